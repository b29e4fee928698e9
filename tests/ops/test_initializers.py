"""PyTorch-default initialisation of the heads' convs."""

import math

import keras
import numpy as np
import pytest

from svf_tf.heads.aspp import ASPP
from svf_tf.ops.initializers import TorchBiasUniform, torch_conv2d, torch_dense
from tests.helpers import run_layer_test


def test_default_conv_weights_and_bias_are_uniform_within_one_over_sqrt_fan_in():
    conv = torch_conv2d(256, 3, 64, use_bias=True)
    conv.build((None, None, None, 64))
    bound = 1 / math.sqrt(3 * 3 * 64)
    kernel, bias = conv.kernel.numpy(), conv.bias.numpy()
    for values in (kernel, bias):
        assert np.abs(values).max() <= bound
    # Uniform(-b, b): std b / sqrt(3), and the extremes are reached.
    np.testing.assert_allclose(kernel.std(), bound / math.sqrt(3), rtol=0.02)
    assert np.abs(kernel).max() > 0.99 * bound
    assert np.abs(bias).max() > 0.8 * bound and bias.std() > 0  # not Keras' zeros


def test_kaiming_normal_is_untruncated_with_std_sqrt_2_over_fan_in():
    aspp = ASPP(256)
    aspp.build((None, None, None, 256))
    kernel = aspp.point_conv.kernel.numpy()
    std = math.sqrt(2 / 256)
    np.testing.assert_allclose(kernel.std(), std, rtol=0.02)
    assert np.abs(kernel).max() > 3 * std  # a truncated normal stops at 2 std
    bias = aspp.point_conv.bias.numpy()
    assert np.abs(bias).max() <= 1 / math.sqrt(256)


def test_dense_matches_a_1x1_conv_init():
    dense = torch_dense(2, 5)
    dense.build((None, 5))
    bound = 1 / math.sqrt(5)
    assert np.abs(dense.kernel.numpy()).max() <= bound
    assert np.abs(dense.bias.numpy()).max() <= bound and np.abs(dense.bias.numpy()).max() > 0


def test_bad_arguments_and_config():
    with pytest.raises(ValueError, match="in_channels"):
        torch_conv2d(8, 1, use_bias=True)
    with pytest.raises(ValueError, match="odd"):
        torch_conv2d(8, 2)
    with pytest.raises(ValueError, match="kernel_init"):
        torch_conv2d(8, 3, kernel_init="glorot")
    with pytest.raises(ValueError, match="fan_in"):
        TorchBiasUniform(0)
    init = TorchBiasUniform(9, seed=3)
    assert TorchBiasUniform.from_config(init.get_config()).get_config() == init.get_config()


def test_torch_conv_goes_through_the_layer_harness():
    # A plain Conv2D whose bias initialiser is ours: the `.keras` file must load
    # without custom_objects. 3x3, 3 -> 4 channels, "same": 108 + 4 values.
    conv, _ = run_layer_test(lambda: torch_conv2d(4, 3, 3, use_bias=True, name="c"),
                             (2, 5, 5, 3), expected_trainable=2, expected_non_trainable=0,
                             expected_params=(3 * 3 * 3 * 4 + 4, 0),
                             expected_output_shapes=(2, 5, 5, 4))
    rebuilt = keras.layers.Conv2D.from_config(conv.get_config())
    assert isinstance(rebuilt.bias_initializer, TorchBiasUniform)
    assert rebuilt.bias_initializer.fan_in == 27
