"""The few-shot test protocol split across the workers and replicas of a strategy.

Test episode i (any evaluated item: `sum_counts_distributed`) goes to global
replica i mod R (R replicas over all workers): worker w builds a pipeline of
only its replicas' episodes
(`tf.distribute.Strategy.distribute_datasets_from_function`), each replica
scores its episode as `evaluate_episodes` does (`episode_counts`), and the
per-replica counts are summed over every replica of every worker
(`strategy.reduce`). The list is padded to a multiple of R with copies of
episode 0 weighted 0, so every replica takes the same number of steps. The
counts are integers held in float64, so their sums, and hence mIoU and
FB-IoU, equal the single-process result exactly, for any split.
"""

import time

import numpy as np
import tensorflow as tf

from svf_tf.metrics.evaluation import episode_counts, report_from_counts
from svf_tf.metrics.iou_counts import IGNORE_LABEL, check_num_classes

_KEYS = ("query_image", "support_images", "support_masks", "class_slot", "original_mask")


def replica_episodes(num_episodes, num_replicas, replicas_per_worker, worker):
    """(episode indices, weights) worker `worker`'s pipeline yields, in order.

    Step s hands its local replica l the episode s * R + worker * L + l
    (R = `num_replicas`, L = `replicas_per_worker`); past the last episode a
    copy of episode 0 with weight 0.
    """
    steps = -(-num_episodes // num_replicas)
    slots = np.arange(steps * num_replicas).reshape(steps, num_replicas)
    mine = slots[:, worker * replicas_per_worker:(worker + 1) * replicas_per_worker].ravel()
    real = mine < num_episodes
    return np.where(real, mine, 0), real.astype(np.float64)


def sum_counts_distributed(count_fn, make_dataset, num_items, strategy):
    """{key: float64 array} of `count_fn(element)` summed over every item, split over replicas.

    The one distributed evaluation loop: test episodes here, BAM's stage-1
    validation images (`BaseLearnerTask.make_distributed_validation`).

    Args:
        count_fn: `fn(element) -> {key: additive count tensor}` of one item;
            called inside `strategy.run`.
        make_dataset: `fn(indices) -> dataset` of those items, in that
            order, one item per element.
        num_items: how many items there are (0 .. num_items - 1).
        strategy: the `tf.distribute.Strategy` (every worker calls this).
    """
    def pipeline(context):
        local = context.num_replicas_in_sync // context.num_input_pipelines
        indices, weights = replica_episodes(num_items, context.num_replicas_in_sync, local,
                                            context.input_pipeline_id)
        return tf.data.Dataset.zip(make_dataset([int(i) for i in indices]),
                                   tf.data.Dataset.from_tensor_slices(weights))

    def replica_counts(element, weight):
        return {key: tf.cast(value, tf.float64) * weight
                for key, value in count_fn(element).items()}

    @tf.function(reduce_retracing=True)
    def step(element, weight):
        counts = strategy.run(replica_counts, args=(element, weight))
        return {key: strategy.reduce("sum", value, axis=None) for key, value in counts.items()}

    totals = {}
    for element, weight in strategy.distribute_datasets_from_function(pipeline):
        for key, value in step(element, weight).items():
            value = np.asarray(value, np.float64)
            totals[key] = totals[key] + value if key in totals else value
    return totals


def evaluate_episodes_distributed(predict_fn, make_dataset, num_episodes, num_classes, strategy,
                                  *, ignore_label=IGNORE_LABEL):
    """`evaluate_episodes`' report, the episodes split over `strategy`'s replicas.

    Args:
        predict_fn: as `evaluate_episodes` takes it; called inside `strategy.run`.
        make_dataset: `fn(indices) -> dataset` of those test episodes, in that
            order, batch size 1 (`make_test_dataset` of a subset).
        num_episodes: the number of test episodes.
        num_classes: number of novel-class slots.
        strategy: the `tf.distribute.Strategy` (every worker calls this).

    Returns:
        The report of `evaluate_episodes` (`seconds` is this worker's wall time).
    """
    num_classes = check_num_classes(num_classes)
    if num_episodes < 1:
        raise ValueError("The test dataset yielded no episode; nothing to evaluate.")

    def episodes(indices):
        return make_dataset(indices).map(lambda element: {key: element[key] for key in _KEYS})

    def counts(element):
        logits = predict_fn(element["query_image"], element["support_images"],
                            element["support_masks"])
        return episode_counts(logits, element["original_mask"], element["class_slot"],
                              num_classes, ignore_label)

    start = time.perf_counter()
    totals = sum_counts_distributed(counts, episodes, num_episodes, strategy)
    return report_from_counts(totals, num_classes, num_episodes, time.perf_counter() - start,
                              ignore_label)
