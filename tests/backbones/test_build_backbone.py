"""build_backbone: options, bad input, SVF and the fine-tuning modes, backward cut."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf import SVFConv2D
from svf_tf.backbones import FinetuneSpec, StopGradient, build_backbone
from tests.backbones.backbone_helpers import images, keras_application, numpy_features
from tests.helpers import assert_keras_file_round_trip, relative_error


def _stage(layer_name):
    """Stage of a Keras ResNet50 / VGG16 layer name (conv1/pool1 or block1 -> 0)."""
    match = re.match(r"^(?:conv|pool|block)(\d)_", layer_name)
    return int(match[1]) - 1


def _stop_gradients(model):
    return sorted(layer.name for layer in model.layers if isinstance(layer, StopGradient))


def _trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(name="resnet101"), ValueError, "name='resnet101'"),
    (dict(name="resnet50", input_shape=(474, 474, 3)), ValueError, r"474.*473 or 481"),
    (dict(name="vgg16", input_shape=(473, 640, 3)), ValueError, r"640.*633 or 641"),
    (dict(name="vgg16", input_shape=(473, 473)), ValueError, r"\(473, 473\)"),
    (dict(name="vgg16", input_shape=(473, 473, 1)), ValueError, "height, width, 3"),
    (dict(name="vgg16", input_shape=(0, 473, 3)), ValueError, "positive"),
    (dict(name="vgg16", dilation="torchvision"), ValueError, r"\['dilation'\]"),
    (dict(name="resnet50", batch_norm=True), ValueError, r"\['batch_norm'\]"),
    (dict(name="resnet50", stem="resnet_v2"), ValueError, "stem='resnet_v2'"),
    (dict(name="resnet50", dilation="d1"), ValueError, "dilation='d1'"),
    (dict(name="vgg16", bn_epsilon=1e-5), ValueError, "batch_norm=True"),
    (dict(name="vgg16", finetune="lora"), ValueError, "mode='lora'"),
    (dict(name="vgg16", finetune=FinetuneSpec("part", conv_kinds="1x1")), ValueError,
     "selects no parameter"),
])
def test_bad_options_raise_with_the_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_backbone(**kwargs)


def test_unknown_spatial_size_is_allowed():
    backbone = build_backbone("vgg16", input_shape=(None, 473, 3))
    assert backbone.output["layer2"].shape == (None, None, 60, 256)


# ------------------------------------------------- SVF on ResNet-50 (default)


@pytest.fixture(scope="module")
def resnet50_pair(tmp_path_factory):
    """A plain and an SVF ResNet-50 (rank_multiple 1) with the same random weights."""
    path = tmp_path_factory.mktemp("weights") / "resnet50.weights.h5"
    keras_application("resnet50", seed=3).save_weights(str(path))
    plain = build_backbone("resnet50", weights=str(path))
    svf = build_backbone("resnet50", weights=str(path),
                         finetune=FinetuneSpec("svf", svf_rank_multiple=1))
    return plain, svf


@pytest.mark.slow  # shares the ~10 s ResNet-50 SVD fixture
def test_svf_at_init_gives_the_plain_features(resnet50_pair):
    plain, svf = resnet50_pair
    assert sum(isinstance(layer, SVFConv2D) for layer in svf.layers) == 53
    x = images(65)
    expected, features = numpy_features(plain, x), numpy_features(svf, x)
    for key in expected:
        # float32 recomposition of 53 kernels: measured ~1.5e-6 at layer4.
        assert relative_error(features[key], expected[key]) < 1e-5, key


@pytest.mark.slow  # shares the ~10 s ResNet-50 SVD fixture
def test_svf_default_trains_exactly_the_singular_values_of_layer2_to_layer4(resnet50_pair):
    plain, svf = resnet50_pair
    # Independent count: min(kh*kw*Ci, Co) for every conv kernel of conv3_x..conv5_x.
    expected = sum(min(int(np.prod(layer.kernel.shape[:-1])), layer.kernel.shape[-1])
                   for layer in plain.layers
                   if isinstance(layer, keras.layers.Conv2D) and _stage(layer.name) >= 2)
    assert expected == 12544  # layer2 1,792 + layer3 5,120 + layer4 5,632 singular values
    assert _trainable_count(svf) == expected
    assert {v.name for v in svf.trainable_variables} == {"svf_s"}
    trained = {layer.name for layer in svf.layers if layer.trainable_variables}
    assert {_stage(name) for name in trained} == {2, 3, 4}
    assert _stop_gradients(svf) == ["layer0_stop_gradient", "layer1_stop_gradient"]


@pytest.mark.slow  # shares the ~10 s ResNet-50 SVD fixture
def test_svf_backward_pass_stops_before_layer2(resnet50_pair):
    _, svf = resnet50_pair
    x = tf.constant(images(33))
    with tf.GradientTape() as tape:
        tape.watch(x)
        features = svf(x, training=True)
        loss = sum(tf.reduce_sum(features[k] ** 2) for k in ("layer2", "layer3", "layer4"))
    gradients = tape.gradient(loss, [x] + svf.trainable_variables)
    assert gradients[0] is None  # nothing flows into layer0/layer1 or the image
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in gradients[1:])


# ------------------------------------------------ modes on VGG16-BN (small)


def _vgg_bn_expected(plain, mode, stages):
    """Trainable count computed from the plain VGG16-BN weights, by layer kind and stage."""
    total = 0
    for layer in plain.layers:
        if not layer.weights or _stage(layer.name) not in stages:
            continue
        if isinstance(layer, keras.layers.Conv2D) and mode in ("part", "full"):
            total += sum(int(np.prod(w.shape)) for w in layer.weights)
        if isinstance(layer, keras.layers.BatchNormalization) and mode in ("bn", "full"):
            total += 2 * layer.gamma.shape[0]  # gamma and beta; never the statistics
    return total


@pytest.fixture(scope="module")
def vgg16_bn_plain():
    return build_backbone("vgg16", batch_norm=True)


@pytest.mark.parametrize("finetune,stages,cuts", [
    ("freeze", (), 5),
    ("part", (2, 3, 4), 2),
    ("full", (0, 1, 2, 3, 4), 0),
    ("bn", (2, 3, 4), 2),
    (FinetuneSpec("part", stages=(4,)), (4,), 4),
    (FinetuneSpec("bn", stages=(1, 2)), (1, 2), 1),
])
def test_vgg16_bn_modes(vgg16_bn_plain, finetune, stages, cuts):
    backbone = build_backbone("vgg16", batch_norm=True, finetune=finetune)
    mode = finetune if isinstance(finetune, str) else finetune.mode
    assert _trainable_count(backbone) == _vgg_bn_expected(vgg16_bn_plain, mode, stages)
    assert _stop_gradients(backbone) == [f"layer{i}_stop_gradient" for i in range(cuts)]


@pytest.fixture(scope="module")
def vgg16_bn_svf():
    return build_backbone("vgg16", batch_norm=True, finetune="svf", model_name="meta")


def test_vgg16_bn_svf_counts_and_first_conv_rank(vgg16_bn_svf):
    assert _trainable_count(vgg16_bn_svf) == 3840  # layer2-4 full ranks: 768 + 1536 + 1536
    # Default rank_multiple 4 as the authors' code: the 3*3*3 = 27 RGB conv keeps 24.
    ranks = {layer.name: layer.svf_rank for layer in vgg16_bn_svf.layers
             if isinstance(layer, SVFConv2D)}
    assert ranks["block1_conv1"] == 24 and ranks["block1_conv2"] == 64
    assert ranks["block5_conv3"] == 512


def test_svf_factors_and_stages_table7_and_table8():
    spec = FinetuneSpec("svf", stages=(4,), svf_stages=(3, 4), svf_factors=("U", "V"))
    backbone = build_backbone("vgg16", finetune=spec)
    assert sum(isinstance(layer, SVFConv2D) for layer in backbone.layers) == 6
    names = sorted((layer.name, v.name) for layer in backbone.layers
                   for v in layer.trainable_variables)
    assert names == [(f"block5_conv{i}", f) for i in (1, 2, 3) for f in ("svf_u", "svf_v")]
    assert _stop_gradients(backbone) == [f"layer{i}_stop_gradient" for i in range(4)]


def test_bn_mode_training_step_keeps_running_statistics():
    backbone = build_backbone("vgg16", batch_norm=True, finetune="bn")
    bn = backbone.get_layer("block5_bn3")
    statistics = [bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()]
    gamma = bn.gamma.numpy().copy()
    x = tf.constant(images(17, batch=2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(backbone(x, training=True)["layer4"] ** 2)
    gradients = tape.gradient(loss, backbone.trainable_variables)
    keras.optimizers.SGD(0.1).apply(gradients, backbone.trainable_variables)
    assert not np.array_equal(bn.gamma.numpy(), gamma)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), statistics[0])
    np.testing.assert_array_equal(bn.moving_variance.numpy(), statistics[1])
    trained, inference = backbone(x, training=True), backbone(x, training=False)
    for key in trained:
        np.testing.assert_array_equal(trained[key], inference[key])


def test_full_mode_back_propagates_to_the_image():
    backbone = build_backbone("vgg16", finetune="full")
    assert _stop_gradients(backbone) == []
    # VGG16's 13 3x3 convs with bias (configuration D of the VGG paper, Table 1).
    widths = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    expected = sum(9 * c_in * c_out + c_out for c_in, c_out in zip(widths[:-1], widths[1:],
                                                                  strict=True))
    assert expected == 14_714_688 and _trainable_count(backbone) == expected
    x = tf.constant(images(9))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(backbone(x)["layer0"])
    gradient = tape.gradient(loss, x)
    assert gradient.shape == x.shape and float(tf.reduce_max(tf.abs(gradient))) > 0


def test_resnet_part_finetune_by_conv_kind_table6():
    backbone = build_backbone("resnet50", finetune=FinetuneSpec("part", conv_kinds="3x3"))
    trained = sorted({layer.name for layer in backbone.layers if layer.trainable_variables})
    assert trained == sorted(f"conv{s}_block{b}_2_conv" for s, blocks in
                             ((3, 4), (4, 6), (5, 3)) for b in range(1, blocks + 1))
    assert {v.name for v in backbone.trainable_variables} == {"kernel", "bias"}


def test_two_named_backbones_in_one_model_and_keras_file_round_trip(vgg16_bn_svf, tmp_path):
    # BAM + SVF keeps an SVF copy and a plain copy of the backbone side by side.
    base = build_backbone("vgg16", batch_norm=True, model_name="base")
    image = keras.Input((None, None, 3))
    model = keras.Model(image, [vgg16_bn_svf(image)["layer4"], base(image)["layer4"]])
    assert [layer.name for layer in model.layers[1:]] == ["meta", "base"]
    # The whole SVF backbone (SVFConv2D, FrozenBatchNormalization, StopGradient).
    loaded = assert_keras_file_round_trip(vgg16_bn_svf, images(17), tmp_path / "meta.keras")
    assert [type(layer) for layer in loaded.layers] == [type(layer)
                                                       for layer in vgg16_bn_svf.layers]
    assert _trainable_count(loaded) == 3840
    assert _stop_gradients(loaded) == ["layer0_stop_gradient", "layer1_stop_gradient"]


def test_layer4_can_run_on_other_layer3_features(vgg16_bn_svf):
    # The heads mask the support's layer3 before layer4 (PFENet `PFENet.forward`):
    # a model between two endpoints shares the backbone's layers and weights.
    layer4 = keras.Model(vgg16_bn_svf.output["layer3"], vgg16_bn_svf.output["layer4"])
    assert {id(v) for v in layer4.trainable_variables} <= {
        id(v) for v in vgg16_bn_svf.trainable_variables}
    x = images(33)
    features = numpy_features(vgg16_bn_svf, x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer4(features["layer3"])),
                                  features["layer4"])
    masked = features["layer3"] * (np.arange(3) < 2)[None, :, None, None]  # 3x3 map
    assert not np.allclose(keras.ops.convert_to_numpy(layer4(masked)), features["layer4"])


@pytest.mark.parametrize("kwargs", [
    dict(name="resnet50"), dict(name="resnet50", stem="deep"),
    dict(name="vgg16", batch_norm=True),
], ids=["keras_stem", "deep_stem", "vgg16_bn"])
def test_bn_epsilon_override_reaches_every_batch_norm(kwargs):
    # Keras' 1e-3 instead of the defaults (1.001e-5 Keras ResNet50, 1e-5 PyTorch).
    backbone = build_backbone(bn_epsilon=1e-3, **kwargs)
    norms = [layer for layer in backbone.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == sum(isinstance(layer, keras.layers.Conv2D) for layer in backbone.layers)
    assert {bn.epsilon for bn in norms} == {1e-3}
