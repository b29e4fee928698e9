"""Trained SVF baseline / PFENet / BAM checkpoints -> build_fsss_model, outputs compared."""

import numpy as np
import pytest

from svf_tf.models import build_fsss_model
from svf_tf.torch_import import build_target_model, convert_state_dict
from tests.torch_import.conversion_helpers import (
    ATOL,
    episode,
    keras_backbone,
    keras_episode,
    max_error,
)

torch = pytest.importorskip("torch")
from tests.torch_import.torch_reference import (  # noqa: E402
    BAM,
    VGG16BN,
    Baseline,
    DeepStemResNet50,
    PFENet,
    randomize,
    to_nhwc,
)

pytestmark = pytest.mark.torch

# Small pyramid bins for the 9x9 query features of a 65x65 input: one larger
# than the map, two with overlapping adaptive-pooling windows.
PFENET_BINS = (10, 6, 4, 2)


def run_torch(net, query, supports, masks):
    with torch.no_grad():
        return net(*(torch.from_numpy(a) for a in (query, supports, masks)))


def checkpoint_of(net):
    """A trained model as the references save it: {"state_dict": {"module.<key>": ...}}."""
    return {"epoch": 1, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
            "optimizer": {}}


def test_svf_baseline_resnet50_two_shot():
    net = randomize(Baseline(DeepStemResNet50("torchvision").stages(), vgg=False, shot=2), 21)
    backbone = keras_backbone("resnet50_deep_stem", "torchvision")
    model = build_fsss_model("baseline", backbone, shot=2)

    report = convert_state_dict(checkpoint_of(net), model, "baseline", backbone="resnet50")

    assert report.complete, report.problems()
    skipped = {t.torch_key for t in report.skipped}
    assert {"kshot_rw.0.weight", "kshot_rw.2.bias"} <= skipped  # built but unused by the baseline
    query, supports, masks = episode(batch=2, shot=2, seed=22)
    expected = to_nhwc(run_torch(net, query, supports, masks))
    error = max_error(model(keras_episode(query, supports, masks))["logits"], expected)
    print("baseline logits", error)
    assert error < ATOL


def test_pfenet_vgg16_one_shot():
    net = randomize(PFENet(VGG16BN().stages(), vgg=True, bins=PFENET_BINS), 31)
    model = build_fsss_model("pfenet", keras_backbone("vgg16_bn"), shot=1,
                             pyramid_bins=PFENET_BINS)

    report = convert_state_dict(checkpoint_of(net), model, "pfenet", backbone="vgg16")

    assert report.complete, report.problems()
    loaded = {t.torch_key: t.keras_path for t in report.loaded}
    assert loaded["init_merge.0.0.weight"] == "fem/init_merge_0/kernel"
    assert loaded["beta_conv.3.2.weight"] == "fem/beta_conv_3_1/kernel"
    assert loaded["inner_cls.2.3.bias"] == "fem/inner_cls_2/classifier/bias"
    query, supports, masks = episode(batch=2, shot=1, seed=32)
    logits, aux = run_torch(net, query, supports, masks)
    outputs = model(keras_episode(query, supports, masks))
    errors = {"logits": max_error(outputs["logits"], to_nhwc(logits))}
    errors.update({f"aux_logits_{i}": max_error(k, to_nhwc(t))
                   for i, (k, t) in enumerate(zip(outputs["aux_logits"], aux, strict=True))})
    print("pfenet", errors)
    assert max(errors.values()) < ATOL, errors


def test_bam_resnet50_two_shot_and_weights_file_round_trip(tmp_path):
    net = randomize(BAM(DeepStemResNet50("all_blocks").stages(), vgg=False, shot=2,
                        base_classes=15), 41)
    with torch.no_grad():  # BAM initialises both merges to [1, 0]; any values must carry over
        net.gram_merge.weight.copy_(torch.tensor([0.8, 0.6]).reshape(1, 2, 1, 1))
        net.cls_merge.weight.copy_(torch.tensor([0.7, -0.5]).reshape(1, 2, 1, 1))
    model = build_fsss_model("bam", keras_backbone("resnet50_deep_stem", "all_blocks"), shot=2,
                             num_base_classes=15)

    report = convert_state_dict(checkpoint_of(net), model, "bam", backbone="resnet50")

    assert report.complete, report.problems()
    loaded = {t.torch_key: (t.keras_path, t.layout) for t in report.loaded}
    assert loaded["learner_base.0.features.1.2.running_var"][0] == \
        "learner_base/ppm/bn_bin2/moving_variance"
    assert loaded["gram_merge.weight"] == ("ensemble/gram_merge", "(1,C,1,1)->(C,)")
    assert loaded["kshot_rw.0.weight"] == ("kshot_rw/kshot_rw_1/kernel", "(O,I,1,1)->(I,O)")
    np.testing.assert_allclose(model.get_layer("ensemble").cls_merge.numpy(), [0.7, -0.5])
    query, supports, masks = episode(batch=2, shot=2, seed=42)
    final, meta, base = (to_nhwc(t) for t in run_torch(net, query, supports, masks))
    inputs = keras_episode(query, supports, masks, class_slot=[0, 3])
    outputs = model(inputs, training=False)
    errors = {"logits": max_error(outputs["logits"], final),
              "meta_logits": max_error(outputs["meta_logits"], meta),
              "base_logits": max_error(outputs["base_logits"], base)}
    print("bam", errors)
    assert max(errors.values()) < ATOL, errors

    # The written file restores the same model in a fresh build.
    path = tmp_path / "bam.weights.h5"
    model.save_weights(str(path))
    fresh, _ = build_target_model("bam", backbone="resnet50", dilation="all_blocks", shot=2)
    fresh.load_weights(str(path))
    np.testing.assert_array_equal(fresh(inputs, training=False)["logits"],
                                  outputs["logits"])
