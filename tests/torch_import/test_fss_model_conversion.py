"""Trained SVF baseline / PFENet / BAM checkpoints -> build_fsss_model, compared stage by stage.

Besides the outputs, the episode features of `PFENet.forward` (query_feat,
per-shot prototypes and priors) and, for BAM, the Gram distances, the k-shot
weights and both learners' logits are compared with the PyTorch model's, so
a mismatch points at the stage that causes it.
"""

import keras
import numpy as np
import pytest

from svf_tf.models.build_model import build_fsss_model
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
    cosine_gram,
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


# The prior is min-max normalised per sample, which magnifies float32 rounding of
# the cosine similarities by 1 / (max - min): on these random networks PyTorch's
# own float32 prior is 1e-4 away from its float64 value (and ours 7e-5).
PRIOR_ATOL = 5e-4


def assert_close(errors):
    """Every error below ATOL (the prior below PRIOR_ATOL)."""
    too_large = {name: error for name, error in errors.items()
                 if error >= (PRIOR_ATOL if name == "prior_to_layer3" else ATOL)}
    assert not too_large, errors


def episode_major(per_shot):
    """A list over shots of [B, C, h, w] torch tensors -> [B*K, h, w, C], row b*K + k."""
    return to_nhwc(torch.stack(per_shot, 1).flatten(0, 1))


def intermediate_errors(model, net, inputs, query, supports, masks):
    """Max errors of the intermediate tensors of `model` against the PyTorch `net`'s."""
    with torch.no_grad():
        query_feat, prototypes, priors, q2, support_layer2, q4 = net.episode(
            *(torch.from_numpy(a) for a in (query, supports, masks)))
        expected = {"down_query": to_nhwc(query_feat),
                    "support_prototypes": episode_major(prototypes),
                    "prior_to_layer3": episode_major(priors)}
        if isinstance(net, BAM):
            query_gram = cosine_gram(q2)
            distances = torch.stack([(query_gram - cosine_gram(s2)).flatten(1).norm(dim=1)
                                     / q2.shape[1] for s2 in support_layer2], 1)
            expected["gram_distance"] = distances.reshape(-1, 1).numpy()
            expected["kshot_rw"] = net.shot_weights(distances).numpy()
            expected["learner_base"] = to_nhwc(net.learner_base(q4))
    probe = keras.Model(model.inputs, {name: model.get_layer(name).output for name in expected})
    actual = probe(inputs, training=False)
    for name, value in expected.items():
        assert tuple(actual[name].shape) == value.shape, (name, actual[name].shape, value.shape)
    return {name: max_error(actual[name], value) for name, value in expected.items()}


def checkpoint_of(net):
    """A trained model as the references save it: {"state_dict": {"module.<key>": ...}}."""
    return {"epoch": 1, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
            "optimizer": {}}


@pytest.mark.slow  # a full-size ResNet-50 in both frameworks; the VGG16 tests are the default's
def test_svf_baseline_resnet50_two_shot():
    net = randomize(Baseline(DeepStemResNet50("torchvision").stages(), vgg=False, shot=2), 21)
    backbone = keras_backbone("resnet50_deep_stem", "torchvision")
    model = build_fsss_model("baseline", backbone, shot=2)

    report = convert_state_dict(checkpoint_of(net), model, "baseline", backbone="resnet50")

    assert report.complete, report.problems()
    skipped = {t.torch_key for t in report.skipped}
    assert {"kshot_rw.0.weight", "kshot_rw.2.bias"} <= skipped  # built but unused by the baseline
    query, supports, masks = episode(batch=2, shot=2, seed=22)
    inputs = keras_episode(query, supports, masks)
    expected = to_nhwc(run_torch(net, query, supports, masks))
    errors = intermediate_errors(model, net, inputs, query, supports, masks)
    errors["logits"] = max_error(model(inputs)["logits"], expected)
    print("baseline", errors)
    assert_close(errors)


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
    inputs = keras_episode(query, supports, masks)
    outputs = model(inputs)
    errors = intermediate_errors(model, net, inputs, query, supports, masks)
    errors["logits"] = max_error(outputs["logits"], to_nhwc(logits))
    errors.update({f"aux_logits_{i}": max_error(k, to_nhwc(t))
                   for i, (k, t) in enumerate(zip(outputs["aux_logits"], aux, strict=True))})
    print("pfenet", errors)
    assert_close(errors)


def check_bam_conversion(net, model, backbone, seed, tmp_path, **target_options):
    """BAM converted from `net` into `model`: report, every stage's outputs, weights file."""
    with torch.no_grad():  # BAM initialises both merges to [1, 0]; any values must carry over
        net.gram_merge.weight.copy_(torch.tensor([0.8, 0.6]).reshape(1, 2, 1, 1))
        net.cls_merge.weight.copy_(torch.tensor([0.7, -0.5]).reshape(1, 2, 1, 1))
    report = convert_state_dict(checkpoint_of(net), model, "bam", backbone=backbone)

    assert report.complete, report.problems()
    loaded = {t.torch_key: (t.keras_path, t.layout) for t in report.loaded}
    assert loaded["gram_merge.weight"] == ("ensemble/gram_merge", "(1,C,1,1)->(C,)")
    assert loaded["kshot_rw.2.weight"] == ("kshot_rw/kshot_rw_2/kernel", "(O,I,1,1)->(I,O)")
    np.testing.assert_allclose(model.get_layer("ensemble").cls_merge.numpy(), [0.7, -0.5])
    query, supports, masks = episode(batch=2, shot=2, seed=seed)
    final, meta, base = (to_nhwc(t) for t in run_torch(net, query, supports, masks))
    inputs = keras_episode(query, supports, masks, class_slot=[0, 3])
    outputs = model(inputs, training=False)
    errors = intermediate_errors(model, net, inputs, query, supports, masks)
    errors.update({"logits": max_error(outputs["logits"], final),
                   "meta_logits": max_error(outputs["meta_logits"], meta),
                   "base_logits": max_error(outputs["base_logits"], base)})
    print(f"bam {backbone}", errors)
    assert_close(errors)

    # The written file restores the same model in a fresh build.
    path = tmp_path / "bam.weights.h5"
    model.save_weights(str(path))
    fresh, _ = build_target_model("bam", backbone=backbone, shot=2, **target_options)
    fresh.load_weights(str(path))
    np.testing.assert_array_equal(fresh(inputs, training=False)["logits"], outputs["logits"])
    return loaded


@pytest.mark.slow  # BAM's two VGG16s and PyTorch's; PFENet's VGG16 one-shot test is the default's
def test_bam_vgg16_two_shot_and_weights_file_round_trip(tmp_path):
    """BAM on VGG16-BN: the default run's version of the ResNet-50 test below."""
    net = randomize(BAM(VGG16BN().stages(), vgg=True, shot=2, base_classes=15), 45)
    model = build_fsss_model("bam", keras_backbone("vgg16_bn"), shot=2, num_base_classes=15)
    check_bam_conversion(net, model, "vgg16", 46, tmp_path)


@pytest.mark.slow  # two ResNet-50s and PyTorch's; the VGG16 tests above cover it
def test_bam_resnet50_two_shot_and_weights_file_round_trip(tmp_path):
    net = randomize(BAM(DeepStemResNet50("all_blocks").stages(), vgg=False, shot=2,
                        base_classes=15), 41)
    model = build_fsss_model("bam", keras_backbone("resnet50_deep_stem", "all_blocks"), shot=2,
                             num_base_classes=15)
    loaded = check_bam_conversion(net, model, "resnet50", 42, tmp_path, dilation="all_blocks")
    assert loaded["learner_base.0.features.1.2.running_var"][0] == \
        "learner_base/ppm/bn_bin2/moving_variance"
    assert loaded["kshot_rw.0.weight"] == ("kshot_rw/kshot_rw_1/kernel", "(O,I,1,1)->(I,O)")
