"""ImageNet checkpoints (resnet50_v2.pth, vgg16_bn.pth) -> our backbones, layer by layer."""

import numpy as np
import pytest

from svf_tf.backbones import build_backbone
from svf_tf.torch_import import convert_checkpoint, convert_state_dict
from tests.torch_import.conversion_helpers import ATOL, IMAGE_SIZE, keras_backbone, max_error

torch = pytest.importorskip("torch")
from tests.torch_import.torch_reference import (  # noqa: E402
    VGG16BN,
    Backbone,
    DeepStemResNet50,
    randomize,
    set_resnet_dilation,
    to_nhwc,
)

pytestmark = pytest.mark.torch


def reference_features(stages, image):
    with torch.no_grad():
        return [to_nhwc(f) for f in Backbone(stages)(torch.from_numpy(image))]


def assert_layers_match(backbone, reference, image):
    features = backbone(image.transpose(0, 2, 3, 1))
    errors = {f"layer{i}": max_error(features[f"layer{i}"], ref)
              for i, ref in enumerate(reference)}
    for i, ref in enumerate(reference):
        assert features[f"layer{i}"].shape == ref.shape
    assert max(errors.values()) < ATOL, errors
    return errors


def image(seed, batch=2):
    return np.random.default_rng(seed).normal(
        size=(batch, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)


@pytest.mark.slow  # two ResNet-50s; test_svf_baseline_resnet50_two_shot converts one in-process
def test_resnet50_v2_checkpoint_file_matches_torch_layer_by_layer_for_both_dilations(tmp_path):
    net = randomize(DeepStemResNet50("all_blocks"), seed=1)
    checkpoint = tmp_path / "resnet50_v2.pth"
    torch.save(net.state_dict(), checkpoint)
    output = tmp_path / "resnet50_v2.weights.h5"

    report = convert_checkpoint(checkpoint, "resnet50_deep_stem", output)

    assert report.complete, report.problems()
    assert len(report.loaded) == 275  # 55 conv kernels + 55 BNs x 4 variables
    skipped = {t.torch_key: t.reason for t in report.skipped}
    assert "fc.weight" in skipped and "fc.bias" in skipped
    assert "layer4.2.bn3.num_batches_tracked" in skipped
    # Dilation is not in the weights: the one file serves D1 (PFENet/BAM) and
    # D2 (the SVF code), compared with the PyTorch network rewired the same way.
    x = image(seed=2)
    for dilation in ("all_blocks", "torchvision"):
        backbone = build_backbone("resnet50", weights=str(output), stem="deep",
                                  dilation=dilation)
        reference = reference_features(set_resnet_dilation(net, dilation).stages(), x)
        print(dilation, assert_layers_match(backbone, reference, x))


def test_vgg16_bn_checkpoint_file_matches_torch_layer_by_layer(tmp_path):
    net = randomize(VGG16BN(), seed=3)
    checkpoint = tmp_path / "vgg16_bn.pth"
    torch.save(net.state_dict(), checkpoint)
    output = tmp_path / "vgg16_bn.weights.h5"

    report = convert_checkpoint(checkpoint, "vgg16_bn", output)

    assert report.complete, report.problems()
    loaded = {t.torch_key: t.keras_path for t in report.loaded}
    assert loaded["features.0.weight"] == "block1_conv1/kernel"
    assert loaded["features.41.running_var"] == "block5_bn3/moving_variance"
    assert {t.torch_key for t in report.skipped} >= {"classifier.0.weight",
                                                      "classifier.0.bias"}
    backbone = build_backbone("vgg16", weights=str(output), batch_norm=True)
    x = image(seed=4)
    print(assert_layers_match(backbone, reference_features(net.stages(), x), x))


def test_few_shot_naming_wrapped_in_state_dict_with_module_prefix():
    """A trained model's layer0..4 keys, saved by DataParallel inside {"state_dict": ...}.

    (The ResNet-50 spelling, layer0.N for the stem, is compared end to end by
    the baseline and BAM tests.)
    """
    stages = randomize(VGG16BN(), seed=5).stages()
    state = {f"module.{k}": v for k, v in Backbone(stages).state_dict().items()}
    checkpoint = {"epoch": 7, "state_dict": state, "optimizer": {"state": {}}}
    backbone = keras_backbone("vgg16_bn")

    report = convert_state_dict(checkpoint, backbone, "vgg16_bn")

    assert report.complete, report.problems()
    assert any("epoch, optimizer" in note for note in report.notes)
    assert any("'module.'" in note for note in report.notes)
    x = image(seed=6, batch=1)
    print(assert_layers_match(backbone, reference_features(stages, x), x))
