"""A training job spread over several worker processes (`MultiWorkerMirroredStrategy`).

Everything here goes through TensorFlow's own distribution engine; the
workers never talk to each other any other way:

- `worker_count`: how many worker processes the strategy's cluster has
  (`TF_CONFIG`, read by its cluster resolver); 1 for every single-process
  strategy, which keeps the single-process code path unchanged.
- `agree_on_start`: the first collective of a job, before any variable is
  created. Every worker contributes whether it could open the run and a
  digest of its settings (`strategy.gather` of one small tensor per
  replica), so a chief that could not open the run directory, or a worker
  started with other flags, stops *every* worker with one line instead of
  leaving the others waiting in a collective.
- `entered_together`: `agree_on_start` around entering a context (an
  evaluation's lock of --work_dir, which only the chief takes).
- `worker_scratch_dir`: where a non-chief worker writes its copies of the
  checkpoints, emptied when it starts.
- `distributed_batches`: one epoch's batches. Several workers read
  `distribute_datasets_from_function`: each builds its own pipeline from
  its `tf.distribute.InputContext` (`svf_tf.data.sharding`), so the global
  batch is split across all replicas of all workers and every batch of the
  epoch is used exactly once.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

#: Bytes of the settings digest the workers compare (as int32 values 0..255).
_DIGEST_BYTES = 16


class WorkerMismatchError(ValueError):
    """The workers of one job do not agree (settings, or the chief could not start)."""


def worker_count(strategy):
    """The number of worker processes (chief included) of `strategy`'s cluster; 1 if none."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(job, ())) for job in ("chief", "worker"))


def worker_index(strategy):
    """This process's index among `worker_count` (the chief first)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return 0
    return resolver.task_id + (1 if has_chief else 0)


def settings_digest(settings):
    """A short hex digest of a JSON-able description of a job's settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:2 * _DIGEST_BYTES]


def agree_on_start(strategy, digest):
    """Stops every worker unless all opened the run and share one settings digest.

    Args:
        strategy: the job's strategy (a no-op for None or a single worker).
        digest: `settings_digest` of this worker's settings, or None when this
            worker failed to start (it then raises its own error after this call).

    Raises:
        WorkerMismatchError: another worker failed to start, or has other settings.
    """
    if worker_count(strategy) == 1:
        return
    row = np.zeros([1, 1 + _DIGEST_BYTES], np.int32)
    if digest is not None:
        row[0, 0] = 1
        row[0, 1:] = np.frombuffer(bytes.fromhex(digest), np.uint8)
    values = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant(row))
    rows = strategy.gather(values, axis=0).numpy()
    if digest is None:
        return
    replicas = len(rows) // worker_count(strategy)
    workers = rows[::replicas]
    failed = [index for index, worker in enumerate(workers) if worker[0] == 0]
    if failed:
        raise WorkerMismatchError(
            f"worker {failed[0]} of this job could not start (its own output says why: e.g. "
            "the run directory is locked, or the data is missing); fix that and start every "
            "worker again.")
    differ = [index for index, worker in enumerate(workers) if not np.array_equal(worker,
                                                                                   workers[0])]
    if differ:
        theirs = bytes(workers[differ[0]][1:].astype(np.uint8)).hex()
        raise WorkerMismatchError(
            f"worker {differ[0]} was started with other settings than worker 0 (settings "
            f"digest {theirs} vs {bytes(workers[0][1:].astype(np.uint8)).hex()}): start every "
            "worker with the same flags; only TF_CONFIG's task index may differ.")


def worker_scratch_dir(run_dir, index):
    """A non-chief worker's emptied directory for its copies of the checkpoints.

    TensorFlow's multi-worker checkpointing has every worker write a save
    (reading a variable may be a collective); a non-chief writes its own
    copy where only it writes and deletes it at the end. The name is a
    function of the run and the worker index under the temporary directory
    ($TMPDIR), so a worker killed before it could delete it empties it when
    it starts again.
    """
    digest = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"svf_tf_worker_{digest}_{index}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


@contextlib.contextmanager
def entered_together(context, strategy, settings):
    """Enters `context` (e.g. the run's lock) here, then `agree_on_start` with the other workers.

    A worker that fails to enter it still takes part in the agreement (so
    every worker stops with one line) before its own error propagates.
    `settings`: a JSON-able description of the job (`settings_digest`).
    """
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(context)
        except BaseException:
            agree_on_start(strategy, None)
            raise
        agree_on_start(strategy, settings_digest(settings))
        yield


def distributed_batches(strategy, task, epoch, skip):
    """The batches of `task`'s epoch `epoch` from step `skip` on, over `strategy`'s replicas.

    A single worker keeps `experimental_distribute_dataset` (the global batch
    split across its replicas); several workers each build their own
    pipeline of their share (`Task.worker_train_dataset`).
    """
    if worker_count(strategy) == 1:
        return strategy.experimental_distribute_dataset(task.train_dataset(epoch).skip(skip))
    return strategy.distribute_datasets_from_function(
        lambda context: task.worker_train_dataset(epoch, skip, context))
