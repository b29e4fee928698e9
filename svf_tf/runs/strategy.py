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
