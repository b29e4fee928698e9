"""BAM's stage-1 PSPNet best.pth -> build_pspnet_model, backbone and head compared."""

import numpy as np
import pytest

from svf_tf.backbones import build_backbone
from svf_tf.heads.pspnet import build_pspnet_model
from svf_tf.torch_import import convert_checkpoint
from tests.torch_import.conversion_helpers import ATOL, IMAGE_SIZE, max_error

torch = pytest.importorskip("torch")
from tests.torch_import.torch_reference import (  # noqa: E402
    VGG16BN,
    PSPNet,
    randomize,
    to_nhwc,
)

pytestmark = pytest.mark.torch


def test_stage1_vgg_pspnet_best_pth_matches_torch(tmp_path):
    net = randomize(PSPNet(VGG16BN().stages(), fea_dim=512, classes=16), seed=11)
    checkpoint = tmp_path / "best.pth"
    # As BAM's train_base.py saves it: DataParallel keys inside "state_dict".
    torch.save({"epoch": 100, "state_dict": {f"module.{k}": v
                                             for k, v in net.state_dict().items()}},
               checkpoint)
    output, backbone_output = tmp_path / "pspnet.weights.h5", tmp_path / "backbone.weights.h5"

    report = convert_checkpoint(checkpoint, "pspnet", output, backbone="vgg16",
                                dataset="pascal", backbone_output=backbone_output)

    assert report.complete, report.problems()
    skipped = {t.torch_key: t.reason for t in report.skipped}
    assert skipped["encoder.4.0.weight"] == "same module as layer4.0.weight (registered twice)"
    loaded = {t.torch_key: t.keras_path for t in report.loaded}
    assert loaded["ppm.features.3.1.weight"] == "pspnet_head/ppm/conv_bin6/kernel"
    assert loaded["cls.4.bias"] == "pspnet_head/cls/classifier/bias"

    # Load both files as a user would, into freshly built models.
    backbone = build_backbone("vgg16", weights=str(backbone_output), batch_norm=True)
    model = build_pspnet_model(build_backbone("vgg16", batch_norm=True), 16)
    model.load_weights(str(output))
    x = np.random.default_rng(12).normal(size=(2, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    with torch.no_grad():
        stages, feature = [], torch.from_numpy(x)
        for index in range(5):
            feature = getattr(net, f"layer{index}")(feature)
            stages.append(to_nhwc(feature))
        head = to_nhwc(net.head(feature))
        logits = to_nhwc(net(torch.from_numpy(x)))
    features = backbone(x.transpose(0, 2, 3, 1))
    errors = {f"layer{i}": max_error(features[f"layer{i}"], ref) for i, ref in enumerate(stages)}
    layer4 = features["layer4"]
    errors["pspnet_head"] = max_error(model.get_layer("pspnet_head")(layer4), head)
    errors["logits"] = max_error(model(x.transpose(0, 2, 3, 1))["logits"], logits)
    print(errors)
    assert max(errors.values()) < ATOL, errors
