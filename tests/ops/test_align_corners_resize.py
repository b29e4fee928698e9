"""Bilinear resize with align_corners=True against a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.ops.align_corners_resize import AlignCornersResize, resize_align_corners
from tests.helpers import run_layer_test
from tests.models.numpy_reference import numpy_align_corners


@pytest.mark.parametrize("in_size,out_size", [
    ((5, 5), (9, 9)),      # layer4 -> image, tiny
    ((9, 9), (5, 5)),      # image mask -> layer3
    ((8, 8), (60, 60)),    # PFENet bin back to the feature size
    ((60, 60), (15, 15)),  # prior to a PFENet bin
    ((7, 5), (13, 3)),     # not square
    ((1, 1), (4, 4)),      # 1x1 global output broadcast
    ((4, 6), (1, 1)),      # to one cell: the top-left corner
])
def test_matches_numpy_reference(in_size, out_size):
    x = np.random.default_rng(0).normal(size=(2, *in_size, 3))
    expected = numpy_align_corners(x, *out_size)
    actual = resize_align_corners(tf.constant(x, tf.float32), out_size).numpy()
    np.testing.assert_allclose(actual, expected, atol=2e-5)


def test_corners_are_kept_and_it_differs_from_half_pixel_resize():
    x = np.random.default_rng(1).normal(size=(1, 5, 5, 1)).astype("float32")
    y = resize_align_corners(x, (9, 9)).numpy()
    np.testing.assert_allclose(y[0, [0, 0, -1, -1], [0, -1, 0, -1]],
                               x[0, [0, 0, -1, -1], [0, -1, 0, -1]], rtol=1e-6)
    half_pixel = tf.image.resize(x, (9, 9), method="bilinear").numpy()
    assert np.abs(half_pixel - y).max() > 1e-2


def test_sizes_known_only_at_run_time():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 2]),
                                  tf.TensorSpec([None, None, None, 1])])
    def resize_like(x, like):
        return AlignCornersResize()([x, like])

    x = np.random.default_rng(2).normal(size=(1, 6, 4, 2)).astype("float32")
    for size in [(11, 7), (3, 3)]:
        out = resize_like(x, np.zeros((1, *size, 1), np.float32)).numpy()
        np.testing.assert_allclose(out, numpy_align_corners(x, *size), atol=2e-5)


def test_gradient_is_the_transposed_interpolation():
    x = tf.constant(np.random.default_rng(3).normal(size=(1, 3, 3, 1)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(resize_align_corners(x, (5, 5)))
    grad = tape.gradient(total, x).numpy()
    # Each input cell spreads weight 1 + 2*0.5 = 2 per axis onto the 5 outputs
    # of a 3 -> 5 align_corners resize; corners 1.5 (1 + 0.5).
    per_axis = np.array([1.5, 2.0, 1.5])
    np.testing.assert_allclose(grad[0, :, :, 0], np.outer(per_axis, per_axis), rtol=1e-5)


def test_layer_fixed_size_like_mode_and_identity():
    x = np.random.default_rng(4).normal(size=(2, 5, 5, 3)).astype("float32")
    np.testing.assert_allclose(AlignCornersResize((9, 7))(x), numpy_align_corners(x, 9, 7),
                               atol=2e-5)
    like = np.zeros((2, 9, 9, 1), np.float32)
    np.testing.assert_allclose(AlignCornersResize()([x, like]), numpy_align_corners(x, 9, 9),
                               atol=2e-5)
    same = AlignCornersResize()([x, np.zeros((2, 5, 5, 8), np.float32)])
    np.testing.assert_array_equal(same, x)


def test_layer_misuse():
    with pytest.raises(ValueError, match="size=.*positive"):
        AlignCornersResize(size=(0, 3))
    with pytest.raises(ValueError, match=r"call it on \[x, like\]"):
        AlignCornersResize()(np.zeros((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="one tensor"):
        AlignCornersResize(4)([np.zeros((1, 3, 3, 1), np.float32)] * 2)


@pytest.mark.parametrize("size", [(9, 7), None], ids=["fixed_size", "like_mode"])
def test_layer_harness(size):
    x = np.random.default_rng(5).normal(size=(2, 5, 5, 3)).astype("float32")
    inputs = x if size else [x, np.zeros((2, 9, 9, 1), np.float32)]
    out_size = size or (9, 9)
    _, (out,) = run_layer_test(lambda: AlignCornersResize(size, name="up"), inputs,
                               expected_trainable=0, expected_non_trainable=0,
                               expected_output_shapes=(2, *out_size, 3))
    np.testing.assert_allclose(out, numpy_align_corners(x, *out_size), atol=2e-5)
