"""ASPP: branches, order, dilation, no BatchNorm."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.aspp import ASPP
from tests.helpers import run_layer_test


@pytest.fixture(scope="module")
def aspp_and_input():
    layer = ASPP(8, filters=4, name="aspp")
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 8)).astype("float32")
    return layer, x, layer(x).numpy()


def test_output_is_five_branches_in_reference_order(aspp_and_input):
    layer, x, out = aspp_and_input
    assert out.shape == (2, 9, 9, 20)
    # 1. Global branch: relu(conv1x1(mean over the map)), constant over the grid.
    pooled = x.mean(axis=(1, 2), keepdims=True)
    expected_global = np.maximum(
        pooled @ layer.global_conv.kernel.numpy()[0, 0] + layer.global_conv.bias.numpy(), 0)
    np.testing.assert_allclose(out[..., :4], np.broadcast_to(expected_global, (2, 9, 9, 4)),
                               rtol=1e-5, atol=1e-6)
    # 2. 1x1 branch.
    expected_point = np.maximum(
        x @ layer.point_conv.kernel.numpy()[0, 0] + layer.point_conv.bias.numpy(), 0)
    np.testing.assert_allclose(out[..., 4:8], expected_point, rtol=1e-5, atol=1e-6)
    # 3-5. Dilated 3x3 branches with zero padding = rate (PyTorch padding=dilation).
    for index, rate in enumerate((6, 12, 18)):
        conv = layer.atrous_convs[index]
        assert conv.dilation_rate == (rate, rate) and conv.padding == "same"
        padded = tf.pad(x, [[0, 0], [rate, rate], [rate, rate], [0, 0]])
        expected = tf.nn.relu(tf.nn.conv2d(padded, conv.kernel, 1, "VALID", dilations=rate)
                              + conv.bias).numpy()
        np.testing.assert_allclose(out[..., 8 + 4 * index:12 + 4 * index], expected,
                                   rtol=1e-5, atol=1e-6)


def test_no_batch_norm_and_all_convs_have_bias(aspp_and_input):
    layer = aspp_and_input[0]
    names = sorted(v.path for v in layer.weights)
    assert len(names) == 10 and all(n.endswith(("kernel", "bias")) for n in names)


def test_wrong_channels_raise():
    with pytest.raises(ValueError, match="made for 8 input channels"):
        ASPP(8)(np.zeros((1, 5, 5, 3), "float32"))


def test_layer_harness():
    # Five convs 8 -> 4 with bias: two 1x1 (36 each) and three 3x3 (292 each).
    run_layer_test(lambda: ASPP(8, filters=4, rates=(2, 3, 4), name="a"), (2, 9, 9, 8),
                   expected_trainable=10, expected_non_trainable=0,
                   expected_params=(2 * (8 * 4 + 4) + 3 * (9 * 8 * 4 + 4), 0),
                   expected_output_shapes=(2, 9, 9, 5 * 4))
