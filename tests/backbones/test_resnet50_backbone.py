"""ResNet-50 backbone against `keras.applications.ResNet50` and the references' dilations."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.backbones import FrozenBatchNormalization, build_backbone
from tests.backbones.backbone_helpers import (
    copy_weights_by_name,
    images,
    intermediate_outputs,
    keras_application,
    numpy_features,
)
from tests.helpers import relative_error

# The last layer of conv1 (with pool1), conv2_x .. conv5_x in Keras' graph.
KERAS_STAGE_ENDS = ["pool1_pool", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
                    "conv5_block3_out"]
CHANNELS = [64, 256, 512, 1024, 2048]
# Feature sizes at output stride 8 of BAM/PFENet's ResNet-50 (473 -> 60, 641 -> 81).
REFERENCE_SIZES = {473: [119, 119, 60, 60, 60], 641: [161, 161, 81, 81, 81]}
# Dilation of conv{4,5}_block{b}_2_conv: D1 = BAM `model/PSPNet.py` (`OneModel.__init__`),
# D2 = the SVF code's `model/module/resnet.py` (`replace_stride_with_dilation`).
EXPECTED_RATES = {"all_blocks": {4: [2] * 6, 5: [4] * 3},
                  "torchvision": {4: [1, 2, 2, 2, 2, 2], 5: [2, 4, 4]}}


@pytest.fixture(scope="module")
def application():
    return keras_application("resnet50")


@pytest.fixture(scope="module")
def keras_stem_backbones(application):
    """Keras-stem backbones per dilation, with the application's weights (built once)."""
    cache = {}

    def get(dilation):
        if dilation not in cache:
            cache[dilation] = build_backbone("resnet50", dilation=dilation)
            assert copy_weights_by_name(application, cache[dilation]) == 2 * 53  # conv + BN
        return cache[dilation]

    return get


def test_no_dilation_equals_keras_application(application, keras_stem_backbones):
    backbone = keras_stem_backbones("none")
    x = images(64)
    expected = intermediate_outputs(application, KERAS_STAGE_ENDS, x)
    features = numpy_features(backbone, x)
    for stage, want in enumerate(expected):
        assert features[f"layer{stage}"].shape == want.shape
        assert relative_error(features[f"layer{stage}"], want) < 1e-5, stage
    # fix_bn: training=True changes nothing.
    trained = {k: keras.ops.convert_to_numpy(v) for k, v in backbone(x, training=True).items()}
    for key, value in features.items():
        np.testing.assert_array_equal(trained[key], value)


@pytest.mark.parametrize("dilation", ["all_blocks", "torchvision"])
def test_dilated_backbone_keeps_layer0_to_layer2(application, keras_stem_backbones, dilation):
    backbone = keras_stem_backbones(dilation)
    x = images(65)
    expected = intermediate_outputs(application, KERAS_STAGE_ENDS[:3], x)
    features = numpy_features(backbone, x)
    for stage in range(3):
        assert relative_error(features[f"layer{stage}"], expected[stage]) < 1e-5, stage
    # 65 = 8 * 8 + 1: output stride 8 gives 9x9 for layer2..layer4.
    assert [features[f"layer{i}"].shape[1:3] for i in range(5)] == \
        [(17, 17), (17, 17), (9, 9), (9, 9), (9, 9)]
    for stage, rates in EXPECTED_RATES[dilation].items():
        assert backbone.get_layer(f"conv{stage}_block1_1_conv").strides == (1, 1)
        assert backbone.get_layer(f"conv{stage}_block1_0_conv").strides == (1, 1)
        for block, rate in enumerate(rates, start=1):
            conv = backbone.get_layer(f"conv{stage}_block{block}_2_conv")
            assert (conv.dilation_rate, conv.strides) == ((rate, rate), (1, 1))
    # Keras' stride placement (first 1x1 conv) is kept where a stride remains.
    assert backbone.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert backbone.get_layer("conv3_block1_2_conv").strides == (1, 1)


@pytest.fixture(scope="module")
def deep_backbone():
    return build_backbone("resnet50", stem="deep", dilation="torchvision")


def _stage_shapes(backbone, height, width):
    spec = backbone.compute_output_spec(keras.KerasTensor((1, height, width, 3)))
    return [tuple(spec[f"layer{stage}"].shape[1:]) for stage in range(5)]


@pytest.mark.parametrize("variant", ["all_blocks", "torchvision", "deep_torchvision"])
def test_feature_shapes_match_reference_table(keras_stem_backbones, deep_backbone, variant):
    backbone = deep_backbone if variant.startswith("deep") else keras_stem_backbones(variant)
    channels = [128 if variant.startswith("deep") else 64] + CHANNELS[1:]
    # Height 473 (Pascal), width 641 (COCO): both reference sizes in one pass.
    assert _stage_shapes(backbone, 473, 641) == [
        (REFERENCE_SIZES[473][i], REFERENCE_SIZES[641][i], channels[i]) for i in range(5)]


def test_feature_shapes_with_a_static_input_shape():
    backbone = build_backbone("resnet50", input_shape=(473, 641, 3), stem="deep")
    assert [tuple(backbone.output[f"layer{i}"].shape) for i in range(5)] == [
        (None, REFERENCE_SIZES[473][i], REFERENCE_SIZES[641][i], c)
        for i, c in enumerate([128] + CHANNELS[1:])]


def test_feature_shapes_without_dilation(keras_stem_backbones):
    assert [shape[0] for shape in _stage_shapes(keras_stem_backbones("none"), 473, 473)] == \
        [119, 119, 60, 30, 15]


def test_deep_stem_structure_and_pytorch_names(deep_backbone):
    convs = {layer.name: layer for layer in deep_backbone.layers
             if isinstance(layer, keras.layers.Conv2D)}
    assert len(convs) == 3 + 16 * 3 + 4  # stem, bottlenecks, downsample convs
    assert not any(conv.use_bias for conv in convs.values())
    assert convs["conv1"].kernel.shape == (3, 3, 3, 64)
    assert convs["conv3"].kernel.shape == (3, 3, 64, 128)
    assert convs["layer1_0_conv1"].kernel.shape == (1, 1, 128, 64)
    assert convs["layer1_0_downsample_0"].kernel.shape == (1, 1, 128, 256)
    assert convs["layer4_2_conv3"].kernel.shape == (1, 1, 512, 2048)
    # torchvision bottleneck: stride on the 3x3 conv, with PyTorch's padding.
    assert convs["layer2_0_conv1"].strides == (1, 1)
    assert (convs["layer2_0_conv2"].strides, convs["layer2_0_conv2"].padding) == ((2, 2),
                                                                                   "valid")
    assert convs["layer2_0_downsample_0"].strides == (2, 2)
    assert convs["layer3_0_conv2"].dilation_rate == (1, 1)
    assert convs["layer4_1_conv2"].dilation_rate == (4, 4)
    norms = [layer for layer in deep_backbone.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == len(convs)
    assert all(isinstance(bn, FrozenBatchNormalization) and bn.epsilon == 1e-5 for bn in norms)
    for name in ["bn1", "layer1_0_bn1", "layer1_0_downsample_1", "layer4_2_bn3"]:
        assert isinstance(deep_backbone.get_layer(name), FrozenBatchNormalization)


def test_deep_stem_parameter_count_matches_torchvision_layout(deep_backbone):
    # Independent count from the architecture: conv kernels + 4 numbers per BN channel.
    def conv(k, ci, co):
        return k * k * ci * co + 4 * co
    total = conv(3, 3, 64) + conv(3, 64, 64) + conv(3, 64, 128)
    inplanes = 128
    for planes, blocks in [(64, 3), (128, 4), (256, 6), (512, 3)]:
        for block in range(blocks):
            total += conv(1, inplanes, planes) + conv(3, planes, planes) \
                + conv(1, planes, 4 * planes)
            if block == 0:
                total += conv(1, inplanes, 4 * planes)
            inplanes = 4 * planes
    assert deep_backbone.count_params() == total


def _pytorch_conv(x, kernel, stride):
    # PyTorch Conv2d(padding=1): one zero row/column on every side.
    return tf.nn.conv2d(x, kernel, strides=stride, padding=[[0, 0], [1, 1], [1, 1], [0, 0]])


def _pytorch_max_pool(x):
    # PyTorch MaxPool2d(3, 2, padding=1): -inf padding, floor mode.
    x = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=-np.inf)
    size = (x.shape[1] - 3) // 2 + 1
    windows = [x[:, i:i + 2 * size - 1:2, j:j + 2 * size - 1:2] for i in range(3)
               for j in range(3)]
    return np.max(windows, axis=0)


def test_deep_stem_strided_ops_pad_like_pytorch_on_even_sizes(deep_backbone):
    # On even sizes Keras "same" pads stride-2 ops 0 before / 1 after, PyTorch 1 / 1.
    x = images(64)
    names = ["conv1", "relu3", "maxpool", "layer2_0_relu1", "layer2_0_conv2"]
    conv1, relu3, maxpool, relu1, conv2 = intermediate_outputs(deep_backbone, names, x)
    np.testing.assert_allclose(
        conv1, _pytorch_conv(x, deep_backbone.get_layer("conv1").kernel, 2), atol=1e-5)
    np.testing.assert_array_equal(maxpool, _pytorch_max_pool(relu3))
    np.testing.assert_allclose(
        conv2, _pytorch_conv(relu1, deep_backbone.get_layer("layer2_0_conv2").kernel, 2),
        rtol=1e-5, atol=1e-4)
