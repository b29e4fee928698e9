"""Masked average pooling (the support prototype) against NumPy."""

import numpy as np
import pytest

from svf_tf.ops.masked_average_pooling import MaskedAveragePooling, masked_average_pooling
from tests.helpers import run_layer_test


def numpy_prototype(features, mask):
    weighted = (features * mask).sum(axis=(1, 2), keepdims=True)
    return weighted / (mask.sum(axis=(1, 2), keepdims=True) + 0.0005)


def test_matches_numpy_with_a_soft_mask():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 5, 7, 4))
    mask = rng.uniform(size=(3, 5, 7, 1))
    np.testing.assert_allclose(masked_average_pooling(features, mask),
                               numpy_prototype(features, mask), rtol=1e-6)


def test_binary_mask_averages_the_foreground_only():
    features = np.arange(2 * 3 * 3 * 2, dtype="float32").reshape(2, 3, 3, 2)
    mask = np.zeros((2, 3, 3, 1), "float32")
    mask[0, 0, :2] = 1
    out = MaskedAveragePooling()([features, mask]).numpy()
    np.testing.assert_allclose(out[0, 0, 0], features[0, 0, :2].mean(0) * 2 / 2.0005, rtol=1e-6)
    # An empty (all-background) support gives a zero prototype, not NaN.
    np.testing.assert_array_equal(out[1], np.zeros((1, 1, 2)))


def test_mismatched_sizes():
    with pytest.raises(ValueError, match="resize the mask first"):
        MaskedAveragePooling()([np.zeros((1, 4, 4, 2), "float32"),
                                np.zeros((1, 8, 8, 1), "float32")])


def test_layer_harness():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    mask = rng.uniform(size=(2, 4, 4, 1)).astype("float32")
    _, (out,) = run_layer_test(lambda: MaskedAveragePooling(name="gap"), [features, mask],
                               expected_trainable=0, expected_non_trainable=0,
                               expected_output_shapes=(2, 1, 1, 3))
    np.testing.assert_allclose(out, numpy_prototype(features, mask), rtol=1e-5)
