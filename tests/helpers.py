"""Shared checks for layer tests (the keras-hub habit of one small harness)."""

import json

import keras
import numpy as np


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
