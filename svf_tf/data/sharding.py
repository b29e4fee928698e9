"""One worker's share of an epoch's global batches (`tf.distribute.InputContext`).

With W input pipelines (workers) of L replicas each and a global batch of
B = W * L * b elements, replica l of worker w takes the (w * L + l)-th slice
of size b of every global batch. A worker's pipeline yields its L slices in
turn, which is the order `tf.distribute.Strategy.distribute_datasets_from_function`
hands them to its local replicas; the replicas of all workers together see
each global batch exactly once, the same batches as a single process.
"""

import numpy as np


def per_replica_and_local_size(global_batch_size, input_context):
    """(b, L * b): the per-replica batch and the elements one worker takes per step."""
    per_replica = input_context.get_per_replica_batch_size(global_batch_size)
    local = input_context.num_replicas_in_sync // input_context.num_input_pipelines
    return per_replica, per_replica * local


def worker_elements(steps, global_batch_size, input_context, skip=0):
    """Indices (into the epoch's elements) this worker loads, in order, from step `skip` on."""
    _, local = per_replica_and_local_size(global_batch_size, input_context)
    start = input_context.input_pipeline_id * local
    grid = np.arange(steps * global_batch_size).reshape(steps, global_batch_size)
    return grid[skip:, start:start + local].ravel()


def shard_global_batches(dataset, global_batch_size, input_context):
    """This worker's per-replica batches of a dataset of global batches (drop_remainder).

    Works for any dataset; it reads every element, so a pipeline whose
    elements are costly to make selects them first (`worker_elements`).
    """
    per_replica, local = per_replica_and_local_size(global_batch_size, input_context)
    dataset = dataset.rebatch(local, drop_remainder=True)
    dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return dataset.rebatch(per_replica, drop_remainder=True)
