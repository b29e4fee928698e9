"""build_backbone(backbone_bn="batch_stats"): PFENet's own BatchNorm, whole backbones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.backbones import (
    FinetuneSpec,
    FrozenBatchNormalization,
    StopGradient,
    TorchBatchNormalization,
    build_backbone,
)
from svf_tf.torch_import import convert_state_dict
from tests.backbones.backbone_helpers import images
from tests.helpers import assert_keras_file_round_trip, relative_error, two_replica_strategy

DEEP_RESNET = dict(stem="deep", dilation="torchvision")  # PFENet's in this project (D2)


def _batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="resnet50", backbone_bn="train"),
     r"backbone_bn='train' is not accepted: use one of \('frozen', 'batch_stats'\)"),
    (dict(name="vgg16", backbone_bn="batch_stats"), "VGG16, which has no BatchNorm"),
])
def test_bad_backbone_bn_raises_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_backbone(**kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(name="resnet50"), dict(name="resnet50", **DEEP_RESNET),
    dict(name="vgg16", batch_norm=True),
], ids=["keras_stem", "deep_stem", "vgg16_bn"])
def test_every_batch_norm_uses_batch_statistics_and_only_train_bn_trains_gamma_beta(kwargs):
    backbone = build_backbone(backbone_bn="batch_stats", finetune="bn", **kwargs)
    norms = _batch_norms(backbone)
    assert len(norms) == sum(isinstance(layer, keras.layers.Conv2D) for layer in backbone.layers)
    assert all(type(bn) is TorchBatchNormalization and bn.momentum == 0.9 for bn in norms)
    # Mode "bn" trains gamma/beta of layer2..layer4 on top of batch statistics
    # (ordinary PyTorch BN training); the statistics never train.
    assert {v.name for v in backbone.trainable_variables} == {"gamma", "beta"}
    assert 0 < sum(bn.trainable for bn in norms) < len(norms)


def test_default_is_frozen():
    backbone = build_backbone("vgg16", batch_norm=True)
    assert {type(bn) for bn in _batch_norms(backbone)} == {FrozenBatchNormalization}


@pytest.mark.torch
@pytest.mark.slow  # a full-size ResNet-50 in both frameworks
def test_resnet50_train_mode_features_and_running_statistics_match_torch():
    """One training-mode call of a frozen backbone = PyTorch's `model.train()` forward.

    The reference runs in float64: 53 batch-statistics BNs amplify float32
    rounding, and PyTorch's own float32 forward is 1e-4 (relative) from it
    at layer4, as ours is. finetune="freeze" puts a StopGradient after every
    stage: the statistics of those stages must still update.
    """
    pytest.importorskip("torch")
    import torch

    from tests.torch_import.torch_reference import Backbone, DeepStemResNet50, randomize

    net = randomize(DeepStemResNet50("torchvision"), seed=11)
    backbone = build_backbone("resnet50", backbone_bn="batch_stats", input_shape=(33, 33, 3),
                              **DEEP_RESNET)
    assert sum(isinstance(layer, StopGradient) for layer in backbone.layers) == 5
    report = convert_state_dict(net.state_dict(), backbone, "resnet50_deep_stem")
    assert report.complete, report.problems()
    reference = Backbone(net.double().stages()).train()

    def run_reference(x):
        with torch.no_grad():
            features = reference(torch.from_numpy(x.transpose(0, 3, 1, 2)).double())
        return [f.permute(0, 2, 3, 1).numpy() for f in features]

    x = images(33, batch=2, seed=12)
    expected = run_reference(x)
    features = backbone(x, training=True)
    errors = {f"layer{i}": relative_error(features[f"layer{i}"], value)
              for i, value in enumerate(expected)}
    assert max(errors.values()) < 5e-4, errors
    torch_norms = {name.replace(".", "_"): module for name, module in net.named_modules()
                   if isinstance(module, torch.nn.BatchNorm2d)}
    assert sorted(torch_norms) == sorted(bn.name for bn in _batch_norms(backbone))
    for bn in _batch_norms(backbone):
        module = torch_norms[bn.name]
        assert relative_error(bn.moving_mean.numpy(), module.running_mean.numpy()) < 5e-5
        assert relative_error(bn.moving_variance.numpy(), module.running_var.numpy()) < 5e-5

    reference.eval()
    x = images(33, batch=1, seed=13)
    assert relative_error(backbone(x, training=False)["layer4"], run_reference(x)[4]) < 5e-4


def test_keras_file_round_trip_keeps_batch_statistics(tmp_path):
    backbone = build_backbone("vgg16", batch_norm=True, backbone_bn="batch_stats")
    x = images(17, batch=2)
    loaded = assert_keras_file_round_trip(backbone, x, tmp_path / "vgg16_bn.keras")
    assert {type(bn) for bn in _batch_norms(loaded)} == {TorchBatchNormalization}
    # Both are batch-statistics models: the same training call, the same update.
    for model in (backbone, loaded):
        model(x, training=True)
    for a, b in zip(_batch_norms(backbone), _batch_norms(loaded), strict=True):
        np.testing.assert_array_equal(a.moving_variance.numpy(), b.moving_variance.numpy())
    assert not np.array_equal(_batch_norms(loaded)[0].moving_mean.numpy(), 0.0)


# A full-size VGG16-BN on two replicas: the XLA variant, compiled again, is the slow tier's.
@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_one_mirrored_training_step_updates_statistics_with_the_replicas_mean(jit_compile):
    """The step is built as `Task.make_train_step` builds it (XLA-compiled gradients inside)."""
    strategy = two_replica_strategy()
    with strategy.scope():
        backbone = build_backbone("vgg16", batch_norm=True, backbone_bn="batch_stats",
                                  input_shape=(33, 33, 3),
                                  finetune=FinetuneSpec("part", stages=(4,)))
        optimizer = keras.optimizers.SGD(0.1)
    first, last = backbone.get_layer("block1_bn1"), backbone.get_layer("block5_bn3")
    kernel = backbone.get_layer("block5_conv3").kernel
    before = {k: v.numpy().copy() for k, v in (
        ("mean", first.moving_mean), ("variance", first.moving_variance),
        ("last", last.moving_mean), ("kernel", kernel))}
    x = images(33, batch=2, seed=14)
    variables = backbone.trainable_variables

    def local_gradients(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(backbone(batch, training=True)["layer4"] ** 2) * 1e-4
        return tape.gradient(loss, variables)

    if jit_compile:
        local_gradients = tf.function(local_gradients, jit_compile=True)

    def replica_step(batch):
        optimizer.apply_gradients(zip(local_gradients(batch), variables, strict=True))

    @tf.function
    def train_step(batch):
        strategy.run(replica_step, args=(batch,))

    for batch in strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(x).batch(2)):
        train_step(batch)

    # The first BN (layer0, behind a StopGradient) by NumPy: each replica normalised
    # its own image and updated its own copy; reading gives the copies' mean.
    conv = backbone.get_layer("block1_conv1")
    per_replica = [conv(x[i:i + 1]).numpy().reshape(-1, 64) for i in range(2)]
    means = [0.9 * before["mean"] + 0.1 * h.mean(axis=0) for h in per_replica]
    variances = [0.9 * before["variance"] + 0.1 * h.var(axis=0, ddof=1) for h in per_replica]
    for copies, expected in ((first.moving_mean, means), (first.moving_variance, variances)):
        for copy, value in zip(strategy.experimental_local_results(copies.value), expected,
                               strict=True):
            np.testing.assert_allclose(copy.numpy(), value, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(copies.numpy(), np.mean(expected, axis=0), rtol=1e-5,
                                   atol=1e-6)
    assert not np.array_equal(last.moving_mean.numpy(), before["last"])
    assert not np.array_equal(kernel.numpy(), before["kernel"])
