"""The `tf.distribute` strategy of a run, by name."""

import tensorflow as tf

from svf_tf.constants import DISTRIBUTION_STRATEGIES as STRATEGIES


def make_strategy(name):
    """"mirrored": every local GPU, or the CPU when there is none;
    "multi_worker": `MultiWorkerMirroredStrategy` configured by `TF_CONFIG`;
    "default": no distribution (easiest to debug)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy={name!r} is not accepted: use one of {STRATEGIES}.")


def is_chief(strategy):
    """Whether this process writes the run directory: always, except on a non-chief worker.

    MultiWorkerMirroredStrategy: the "chief" task, or worker 0 when the
    cluster has no chief (TensorFlow's convention).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
