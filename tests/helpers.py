"""Shared checks for layer tests (the keras-hub habit of one small harness)."""

import json

import keras
import numpy as np
import tensorflow as tf


def assert_config_round_trip(layer):
    """from_config(get_config()) rebuilds the same config, and it is plain JSON."""
    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))  # no arrays, no objects
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config


def assert_keras_file_round_trip(model, inputs, path):
    """A `.keras` save/load gives the same outputs and the same layer classes."""
    expected = keras.ops.convert_to_numpy(model(inputs))
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(x).__name__ for x in loaded.layers] == [type(x).__name__ for x in model.layers]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(inputs)), expected)
    return loaded


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-12)


_TWO_REPLICAS = None


def two_replica_strategy():
    """The one MirroredStrategy over the two logical CPUs that every test shares.

    Separate MirroredStrategy objects in one process restart their collective
    instance keys, and TensorFlow caches collective parameters by key, so a
    second strategy on the same devices fails with "Shape mismatch in the
    collective instance". A single shared strategy keeps the keys increasing.
    (Programs make one strategy per process, so only tests meet this.)
    """
    global _TWO_REPLICAS
    if _TWO_REPLICAS is None:
        _TWO_REPLICAS = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    return _TWO_REPLICAS
