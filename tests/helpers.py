"""Shared test helpers, and the one layer-test harness (the keras-hub habit).

`run_layer_test` is what every registered layer goes through; the two
`assert_*_round_trip` checks it is made of also serve whole models.
"""

import json
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

# Tests that drive TensorFlow itself (GradientTape, tf.function, tf.distribute,
# SavedModel); the rest of tests/layers and tests/surgery also runs under JAX and PyTorch
# (tests/test_backends.py).
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="uses TensorFlow directly (GradientTape, tf.function, tf.distribute, SavedModel)")


def assert_config_round_trip(layer):
    """from_config(get_config()) rebuilds the same config, and it is plain JSON."""
    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))  # no arrays, no objects
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config


def assert_keras_file_round_trip(model, inputs, path):
    """A `.keras` save/load (no `custom_objects`) gives the same layer classes and outputs.

    Outputs may be nested (a dict of logits, a list of maps); every leaf must
    be equal, bit for bit, under every backend: a last-digit difference means
    the loaded model computes differently (under PyTorch it was once a factor
    variable laid out column-major before saving and row-major after loading,
    `svf_factorization._constant`), so it is not absorbed by a tolerance.
    """
    expected = _numpy_tree(model(inputs))
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(x).__name__ for x in loaded.layers] == [type(x).__name__ for x in model.layers]
    actual = _numpy_tree(loaded(inputs))
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    return loaded


def _numpy_tree(outputs):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(outputs)]


def _input_arrays(inputs, seed=0):
    """`inputs` as given to `run_layer_test` -> (list of arrays, whether it was a list)."""
    rng = np.random.default_rng(seed)
    many = isinstance(inputs, list)
    arrays = []
    for spec in inputs if many else [inputs]:
        if isinstance(spec, tuple):
            spec = rng.normal(size=spec).astype("float32")
        arrays.append(np.asarray(spec))
    return arrays, many


def run_layer_test(layer_factory, inputs, *, expected_trainable, expected_non_trainable,
                   expected_params=None, expected_output_shapes=None, config=True,
                   keras_file=True, mixed_precision=True, mixed_precision_dtypes=None):
    """The checks every registered layer gets (keras-hub's `run_layer_test` habit).

    Args:
        layer_factory: a callable returning a new layer (built or not). It is
            called once under float32 and, for the mixed-precision check, once
            under the mixed_float16 policy.
        inputs: one input or a list of inputs (the layer is called on the
            list); each a full shape with the batch (random normal float32
            data) or an array (its dtype is kept, e.g. int32 masks).
        expected_trainable, expected_non_trainable: the numbers of trainable
            and non-trainable weight variables after the first call.
        expected_params: optional (trainable, non-trainable) counts of values,
            computed by the caller from the kernel shapes.
        expected_output_shapes: optional output shape, or list of shapes for a
            layer with several outputs.
        config: from_config(get_config()) gives the same config (plain JSON)
            and, with the same weights, the same outputs.
        keras_file: a tiny functional model around the layer saves to `.keras`
            and loads without `custom_objects`, with the same weights and
            outputs, and its symbolic output shapes agree with the eager ones.
        mixed_precision: under mixed_float16, every variable stays float32 and
            the float outputs have `mixed_precision_dtypes` (default float16
            for all) and finite values.

    Returns:
        The float32 layer, called once, and its outputs as NumPy arrays (a
        list, flattened), for the caller's own reference checks.
    """
    arrays, many = _input_arrays(inputs)
    call_inputs = arrays if many else arrays[0]
    layer = layer_factory()
    outputs = _numpy_tree(layer(call_inputs))
    assert len(layer.trainable_weights) == expected_trainable, \
        [w.path for w in layer.trainable_weights]
    assert len(layer.non_trainable_weights) == expected_non_trainable, \
        [w.path for w in layer.non_trainable_weights]
    if expected_params is not None:
        counts = tuple(int(sum(np.prod(w.shape) for w in weights))
                       for weights in (layer.trainable_weights, layer.non_trainable_weights))
        assert counts == tuple(expected_params), counts
    if expected_output_shapes is not None:
        expected = (expected_output_shapes if isinstance(expected_output_shapes, list)
                    else [expected_output_shapes])
        assert [o.shape for o in outputs] == [tuple(s) for s in expected]
    for output in outputs:
        if np.issubdtype(output.dtype, np.floating):
            assert np.isfinite(output).all()

    if config:
        assert_config_round_trip(layer)
        rebuilt = type(layer).from_config(layer.get_config())
        rebuilt(call_inputs)
        rebuilt.set_weights(layer.get_weights())
        for a, b in zip(_numpy_tree(rebuilt(call_inputs)), outputs, strict=True):
            np.testing.assert_array_equal(a, b)

    if keras_file:
        symbolic = [keras.Input(a.shape[1:], dtype=str(a.dtype)) for a in arrays]
        symbolic = symbolic if many else symbolic[0]
        model = keras.Model(symbolic, layer(symbolic))
        for spec, output in zip(keras.tree.flatten(model.outputs), outputs, strict=True):
            assert len(spec.shape) == output.ndim
            assert all(s is None or s == o for s, o in zip(spec.shape, output.shape, strict=True))
        with tempfile.TemporaryDirectory() as directory:
            loaded = assert_keras_file_round_trip(model, call_inputs,
                                                  os.path.join(directory, "layer.keras"))
        for a, b in zip(loaded.layers[-1].weights, layer.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=b.path)

    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            half = layer_factory()
            half_outputs = _numpy_tree(half(call_inputs))
        finally:
            keras.mixed_precision.set_global_policy("float32")
        assert all(w.dtype == "float32" for w in half.weights
                   if np.issubdtype(np.dtype(w.dtype), np.floating))
        floating = [o for o in half_outputs if np.issubdtype(o.dtype, np.floating)]
        dtypes = mixed_precision_dtypes or ["float16"] * len(floating)
        assert [str(o.dtype) for o in floating] == list(dtypes)
        assert all(np.isfinite(o).all() for o in floating)
    return layer, outputs


def relative_error(actual, expected):
    # convert_to_numpy, not np.asarray: a PyTorch output that requires grad
    # refuses NumPy's implicit conversion.
    actual, expected = (keras.ops.convert_to_numpy(x).astype(np.float64)
                        for x in (actual, expected))
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


def link_synthetic_dataset(cache, synthetic_cache):
    """Makes `cache` a cache directory whose synthetic dataset is the session's, linked in.

    Generating the dataset again takes ~13 CPU-s; the lists, label statistics and
    anything else a command writes into its cache stay in `cache`. Returns `cache`.
    """
    os.makedirs(cache)
    os.symlink(os.path.join(synthetic_cache, "synthetic_pascal"),
               os.path.join(cache, "synthetic_pascal"))
    return cache
