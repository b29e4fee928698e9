"""Shared test set-up.

Runs before TensorFlow initialises its devices: the CPU is split into two
logical devices so that MirroredStrategy tests have two replicas on any
machine, and TensorFlow's start-up chatter is silenced.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with default dtype policy and a fixed seed."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory):
    """One default synthetic dataset and list cache for the whole session (per xdist worker).

    Defined here, not imported into test modules: an imported fixture is
    set up again in every module that imports it.
    """
    from svf_tf.data import ensure_synthetic_dataset

    cache = tmp_path_factory.mktemp("svf_cache")
    ensure_synthetic_dataset(str(cache / "synthetic_pascal"))
    return str(cache)
