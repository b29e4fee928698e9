"""PyTorch adaptive average pooling windows against a NumPy reference."""

import math

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.ops.adaptive_avg_pool import (
    AdaptiveAveragePooling,
    adaptive_average_pool,
    adaptive_pool_matrix,
)
from tests.helpers import run_layer_test


def numpy_adaptive_pool(x, out_h, out_w):
    """nn.AdaptiveAvgPool2d: cell (i, j) averages rows [floor(i*H/oh), ceil((i+1)*H/oh))."""
    _, in_h, in_w, _ = x.shape
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(out_h):
        r0, r1 = math.floor(i * in_h / out_h), math.ceil((i + 1) * in_h / out_h)
        for j in range(out_w):
            c0, c1 = math.floor(j * in_w / out_w), math.ceil((j + 1) * in_w / out_w)
            out[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("in_size,out_size", [
    (60, 8),    # PFENet's smallest Pascal bin: overlapping windows of 8
    (81, 6),    # PPM on COCO
    (81, 2),
    (30, 60),   # VGG at 473 with the SVF bins: upsampling by repetition
    (60, 60),   # identity
    (5, 1),     # global average
    (7, 3),
])
def test_matches_numpy_reference(in_size, out_size):
    x = np.random.default_rng(0).normal(size=(2, in_size, in_size, 3))
    expected = numpy_adaptive_pool(x, out_size, out_size)
    actual = adaptive_average_pool(tf.constant(x, tf.float32), (out_size, out_size)).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_60_to_8_windows_overlap_like_pytorch():
    matrix = adaptive_pool_matrix(60, 8).numpy()
    starts = [int(np.flatnonzero(row)[0]) for row in matrix]
    widths = [int(np.count_nonzero(row)) for row in matrix]
    assert starts == [0, 7, 15, 22, 30, 37, 45, 52]
    assert widths == [8] * 8
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)


def test_30_to_60_repeats_each_cell():
    matrix = adaptive_pool_matrix(30, 60).numpy()
    np.testing.assert_array_equal(matrix, np.repeat(np.eye(30), 2, axis=0))


def test_non_square_and_run_time_sizes():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 2]),
                                  tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
    def pool(x, out_h, out_w):
        return adaptive_average_pool(x, (out_h, out_w))

    x = np.random.default_rng(1).normal(size=(1, 13, 9, 2)).astype("float32")
    np.testing.assert_allclose(pool(x, 4, 6), numpy_adaptive_pool(x, 4, 6), atol=1e-5)


def test_layer_matches_numpy_and_passes_the_harness():
    x = np.random.default_rng(2).normal(size=(2, 9, 9, 4)).astype("float32")
    layer, (out,) = run_layer_test(lambda: AdaptiveAveragePooling((3, 2), name="pool"), x,
                                   expected_trainable=0, expected_non_trainable=0,
                                   expected_output_shapes=(2, 3, 2, 4))
    np.testing.assert_allclose(out, numpy_adaptive_pool(x, 3, 2), atol=1e-5)
    assert layer.compute_output_shape((None, 9, 9, 4)) == (None, 3, 2, 4)
    with pytest.raises(ValueError, match="output_size=0"):
        AdaptiveAveragePooling(0)
