"""ASPP: branches, order, dilation, no BatchNorm."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.aspp import ASPP
from tests.helpers import assert_config_round_trip


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


def test_wrong_channels_config_and_keras_file(tmp_path, aspp_and_input):
    with pytest.raises(ValueError, match="made for 8 input channels"):
        ASPP(8)(np.zeros((1, 5, 5, 3), "float32"))
    assert_config_round_trip(ASPP(8, filters=4, rates=(2, 3, 4), name="a"))
    layer, x, out = aspp_and_input
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "m.keras")(x), out)
