"""Synthetic pre-training: the mode, the task's metric, and (slow) a real run and its transfer."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from absl import flags

from svf_tf.cli.main import check_flags_used, resolve_job
from svf_tf.config.flags import define_flags
from svf_tf.data.synthetic.pretraining import NUM_PRETRAIN_CLASSES, pretrain_class_design
from svf_tf.data.synthetic.scene import SHAPES, TEXTURES
from svf_tf.tasks.synthetic_pretrain import SyntheticPretrainTask, confusion_scores
from svf_tf.tasks.synthetic_pretrain_model import (
    build_pretrain_model,
    factor_labels,
    predict_classes,
)
from svf_tf.weights import synthetic_backbone as sb

ROOT = pathlib.Path(__file__).resolve().parents[2]


def parse(*args):
    values = flags.FlagValues()
    define_flags(values)
    values(["main.py", *args])
    return values


def test_the_metric_is_the_mean_iou_of_the_classes_that_occur():
    # Rows: label, columns: prediction. Class 0: 3 right, 1 taken for class 1; class 2
    # occurs nowhere and does not count. IoU 3/4 and 2/3; 5 of 6 right.
    scores = confusion_scores([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    assert scores["miou"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert scores["accuracy"] == pytest.approx(5 / 6)


def test_the_heads_factor_a_class_into_its_shape_and_texture_and_back():
    classes = np.array([[0, 1, 23, 100, 255]])
    factors = {k: v.numpy() for k, v in factor_labels(classes, "dense").items()}
    for c, shape, texture in zip(classes[0, 1:4], factors["shape"][0, 1:4],
                                 factors["texture"][0, 1:4], strict=True):
        assert (SHAPES[shape - 1], TEXTURES[texture - 1]) == pretrain_class_design(int(c))
    assert factors["shape"][0, 0] == factors["texture"][0, 0] == 0  # background
    assert factors["shape"][0, 4] == factors["texture"][0, 4] == 255  # ignored
    # Logits whose best classes are those factors predict the classes back (dense: the
    # shape head's background is background).
    logits = {k: np.eye(11)[np.minimum(v, 10)][None] * 5.0 for k, v in factors.items()}
    logits["texture"][..., 0] = 9.0  # the texture head's background never decides
    predicted = predict_classes({k: v[0] for k, v in logits.items()}, "dense").numpy()
    np.testing.assert_array_equal(predicted[0, :4], classes[0, :4])
    main = np.arange(NUM_PRETRAIN_CLASSES)
    factors = {k: v.numpy() for k, v in factor_labels(main, "classification").items()}
    logits = {k: np.eye(10)[v] for k, v in factors.items()}
    np.testing.assert_array_equal(predict_classes(logits, "classification").numpy(), main)


def test_the_mode_takes_its_own_defaults(tmp_path):
    mode, config = resolve_job(parse("--mode=pretrain_synthetic", f"--cache_dir={tmp_path}"))
    assert mode == "pretrain_synthetic"
    assert (config.data.train_size, config.optim.batch_size, config.optim.lr_schedule) == \
        (65, 8, "cosine")
    assert config.optim.epochs * config.optim.steps_per_epoch == 600
    assert (config.model.stem, config.model.dilation, config.model.backbone_bn) == \
        ("keras", "torchvision", "batch_stats")
    assert config.run_dir == os.path.abspath("runs/pretrain_synthetic_resnet50")
    assert config.pretrain.target == "dense"
    _, vgg = resolve_job(parse("--mode=pretrain_synthetic", "--backbone=vgg16", "--epochs=2"))
    assert (vgg.model.vgg_batch_norm, vgg.model.stem, vgg.optim.epochs) == (True, None, 2)
    # The library's entry point has the same defaults.
    assert sb.cache_key(config) == sb.cache_key(sb.pretrain_config("resnet50",
                                                                   cache_dir=str(tmp_path)))


@pytest.mark.parametrize("flag,reason", [
    ("fold", "its own synthetic corpus"),
    ("kshot_reduce", "not a few-shot model"),
    ("finetune", "the whole backbone"),
    ("backbone_lr_ratio", "at --lr"),
    ("weights", "backbone alone"),
])
def test_flags_pretraining_does_not_read_are_refused_in_one_line(flag, reason):
    with pytest.raises(ValueError) as info:
        check_flags_used("pretrain_synthetic", {flag})
    message = str(info.value)
    assert message.startswith(f"--{flag} is not used by --mode=pretrain_synthetic (")
    assert reason in message and "\n" not in message
    with pytest.raises(ValueError, match=r"--pretrain_target is not used by --mode=train "
                                         r"\(it is read by --mode=pretrain_synthetic\)"):
        check_flags_used("train", {"pretrain_target"})


def test_an_endless_corpus_needs_steps_per_epoch():
    task = SyntheticPretrainTask(sb.pretrain_config("vgg16", steps_per_epoch=0))
    with pytest.raises(ValueError, match="give --steps_per_epoch > 0"):
        task.steps_per_epoch()


@pytest.mark.slow
def test_resnet_blocks_start_as_the_identity():
    model = build_pretrain_model("resnet50", "dense", 33, {"stem": "keras",
                                                           "backbone_bn": "batch_stats"})
    backbone = model.get_layer("resnet50_backbone")
    gammas = {layer.name: np.asarray(layer.gamma) for layer in backbone.layers
              if layer.name.endswith("_bn")}
    zero = sorted(name for name, gamma in gammas.items() if not gamma.any())
    assert len(zero) == 3 + 4 + 6 + 3 and all(name.endswith("_3_bn") for name in zero)
    assert gammas["conv1_bn"].min() == 1.0
    outputs = model(np.zeros((2, 33, 33, 3), np.float32))
    assert outputs["shape"].shape == outputs["texture"].shape == (2, 33, 33, 11)


TINY = ("--backbone=vgg16", "--train_size=33", "--epochs=2", "--steps_per_epoch=3",
        "--batch_size=4", "--pretrain_val_images=8")


@pytest.mark.slow
def test_a_tiny_pretraining_through_the_mode_gives_a_loadable_cached_backbone(tmp_path,
                                                                               monkeypatch):
    from svf_tf.backbones import build_backbone

    cache, run = tmp_path / "cache", tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--mode=pretrain_synthetic", *TINY,
         f"--cache_dir={cache}", f"--work_dir={run}"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 and len(summary["history"]) == 2
    assert 0 <= summary["best_miou"] <= 1
    [entry] = (cache / "pretrained").iterdir()
    assert entry.name.startswith("vgg16-")
    manifest = json.loads((entry / "manifest.json").read_text())
    path = str(entry / manifest["weights_file"])
    assert f"--weights={path}" in result.stdout

    # It loads into the few-shot models' backbone (frozen BN, SVF), every layer set, with
    # BatchNorm statistics that training moved away from their initial 0 / 1.
    backbone = build_backbone("vgg16", weights=path, batch_norm=True, finetune="svf")
    means = [np.asarray(v) for v in backbone.variables if v.path.endswith("moving_mean")]
    assert means and all(np.abs(m).max() > 1e-3 for m in means)

    # The library finds it: same settings, no training.
    def no_training(config, log):
        raise AssertionError("trained again")

    monkeypatch.setattr(sb, "train_backbone", no_training)
    options = {flag[2:].split("=")[0]: flag.split("=")[1] for flag in TINY[1:]}
    options = {name: int(value) for name, value in options.items()}
    assert sb.ensure_synthetic_backbone("vgg16", cache_dir=str(cache), log=lambda line: None,
                                        **options) == path


# 150 steps: 130 s on one core of an otherwise idle 2-core machine (the CI condition, one
# thread per pytest worker); random 15.68, pre-trained 20.39 mIoU (250 steps gave 5.85
# points of margin in twice the time).
TRANSFER = dict(train_size=49, epochs=2, steps_per_epoch=75, pretrain_val_images=16,
                strategy="default")


@pytest.mark.slow
def test_pretraining_makes_the_prior_mask_better_on_novel_classes(tmp_path, synthetic_cache):
    from svf_tf.backbones import build_backbone
    from tests.tasks.prior_transfer import novel_episodes, prior_mask_miou

    path = sb.ensure_synthetic_backbone("resnet50", cache_dir=str(tmp_path),
                                        log=lambda line: None, **TRANSFER)
    episodes, classes = novel_episodes(os.path.join(synthetic_cache, "synthetic_pascal"),
                                       synthetic_cache, fold=0, count=60)
    size, variant = TRANSFER["train_size"], {"stem": "keras", "dilation": "torchvision"}
    random = prior_mask_miou(build_backbone("resnet50", None, **variant), episodes, classes,
                             size)
    trained = prior_mask_miou(build_backbone("resnet50", path, **variant), episodes, classes,
                              size)
    assert trained["miou"] > random["miou"] + 0.03, (trained["miou"], random["miou"])
