"""VGG16 / VGG16-BN backbone against `keras.applications.VGG16` and BAM `model/vgg.py`."""

import keras
import numpy as np
import pytest

from svf_tf.backbones import FrozenBatchNormalization, build_backbone
from tests.backbones.backbone_helpers import (
    copy_weights_by_name,
    images,
    intermediate_outputs,
    keras_application,
    numpy_features,
)
from tests.helpers import relative_error

# The references' split: blocks 1..4 with their pool, block 5 without.
KERAS_STAGE_ENDS = ["block1_pool", "block2_pool", "block3_pool", "block4_pool", "block5_conv3"]
CHANNELS = [64, 128, 256, 512, 512]
REFERENCE_SIZES = {473: [237, 119, 60, 30, 30], 641: [321, 161, 81, 41, 41]}


@pytest.fixture(scope="module")
def application():
    return keras_application("vgg16")


@pytest.fixture(scope="module")
def vgg16(application):
    backbone = build_backbone("vgg16")
    assert copy_weights_by_name(application, backbone) == 13
    return backbone


@pytest.fixture(scope="module")
def vgg16_bn():
    return build_backbone("vgg16", batch_norm=True)


def test_equals_keras_application_on_even_sizes(application, vgg16):
    # 64 halves evenly four times, where ceil- and floor-mode pooling agree.
    x = images(64)
    expected = intermediate_outputs(application, KERAS_STAGE_ENDS, x)
    features = numpy_features(vgg16, x)
    for stage, want in enumerate(expected):
        assert features[f"layer{stage}"].shape == want.shape
        assert relative_error(features[f"layer{stage}"], want) < 1e-5, stage


def _ceil_mode_max_pool(x):
    # PyTorch MaxPool2d(2, 2, ceil_mode=True): the last window may hold one row/column.
    x = np.pad(x, [(0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2), (0, 0)],
               constant_values=-np.inf)
    return np.maximum.reduce([x[:, i::2, j::2] for i in range(2) for j in range(2)])


def test_pooling_is_ceil_mode_on_odd_sizes(application, vgg16):
    x = images(65)
    (conv,) = intermediate_outputs(application, ["block1_conv2"], x)
    features = numpy_features(vgg16, x)
    np.testing.assert_array_equal(features["layer0"], _ceil_mode_max_pool(conv))
    assert [features[f"layer{i}"].shape[1] for i in range(5)] == [33, 17, 9, 5, 5]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_feature_shapes_match_reference_table(vgg16, vgg16_bn, batch_norm):
    backbone = vgg16_bn if batch_norm else vgg16
    spec = backbone.compute_output_spec(keras.KerasTensor((1, 473, 641, 3)))
    assert [tuple(spec[f"layer{i}"].shape[1:]) for i in range(5)] == [
        (REFERENCE_SIZES[473][i], REFERENCE_SIZES[641][i], CHANNELS[i]) for i in range(5)]


def test_static_input_shape():
    backbone = build_backbone("vgg16", input_shape=(473, 473, 3))
    assert [backbone.output[f"layer{i}"].shape[1] for i in range(5)] == REFERENCE_SIZES[473]


def test_vgg16_bn_has_frozen_bn_after_every_conv(vgg16_bn):
    layers = [layer for layer in vgg16_bn.layers if layer.weights]
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == ["Conv2D", "FrozenBatchNormalization"] * 13
    for conv, bn in zip(layers[::2], layers[1::2], strict=True):
        assert conv.use_bias and conv.get_config()["activation"] == "linear"
        assert bn.name == conv.name.replace("conv", "bn") and bn.epsilon == 1e-5


def test_vgg16_bn_with_identity_bn_equals_vgg16(application, vgg16, vgg16_bn):
    # BN(x) = x when moving_variance + epsilon = 1, mean 0, gamma 1, beta 0: then
    # conv -> BN -> ReLU is the plain conv with its fused ReLU.
    for layer in vgg16_bn.layers:
        if isinstance(layer, FrozenBatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([np.ones(channels), np.zeros(channels), np.zeros(channels),
                               np.full(channels, 1.0 - layer.epsilon)])
    for layer in vgg16_bn.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights(application.get_layer(layer.name).get_weights())
    x = images(33)
    plain, with_bn = numpy_features(vgg16, x), numpy_features(vgg16_bn, x)
    for key in plain:
        assert relative_error(with_bn[key], plain[key]) < 1e-5, key
