"""Meta-training takes a pre-trained backbone of its own fold and backbone only."""

import pytest

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.config.modes import mode_settings
from svf_tf.runs import identity
from svf_tf.runs.pretrained_run import check_pretrained_backbone


def pretraining_run(tmp_path, mode="pretrain", **settings):
    """A run directory holding only the run.json a pre-training run of `settings` writes."""
    config = ExperimentConfig.from_settings(mode=mode, method="bam", synthetic=True,
                                            work_dir=str(tmp_path / "pre"), **settings)
    identity.write_record(config.run_dir, identity.make_record(config, mode,
                                                               mode_settings(mode)))
    return f"{config.run_dir}/best/backbone.weights.h5"


def train_config(weights, **settings):
    return ExperimentConfig.from_settings(mode="train", synthetic=True, weights=weights,
                                          **settings)


def test_the_same_fold_and_backbone_are_accepted(tmp_path):
    weights = pretraining_run(tmp_path, fold=2, backbone="vgg16")
    record = check_pretrained_backbone(train_config(weights, fold=2, backbone="vgg16"), "train")
    assert record["mode"] == "pretrain"
    # Weights outside any run (ImageNet, converted files) are not this check's business.
    assert check_pretrained_backbone(train_config("imagenet"), "train") is None
    assert check_pretrained_backbone(train_config(str(tmp_path / "w.h5")), "train") is None


@pytest.mark.parametrize("mode", ["pretrain", "train_base"])
def test_another_fold_is_refused_in_one_line(tmp_path, mode):
    weights = pretraining_run(tmp_path, mode=mode, fold=1)
    with pytest.raises(ValueError, match=(
            rf"--weights='.*' comes from a --mode={mode} run with --fold=1 .*; this "
            r"--mode=train job has --fold=0, and a backbone pre-trained on fold 1 has seen "
            r"fold 0's novel classes annotated: pre-train on fold 0 \(--mode=pretrain "
            r"--fold=0\)")) as error:
        check_pretrained_backbone(train_config(weights, fold=0), "train")
    assert "\n" not in str(error.value)


def test_another_backbone_is_refused(tmp_path):
    weights = pretraining_run(tmp_path, backbone="vgg16")
    with pytest.raises(ValueError, match=r"--backbone=vgg16 .* --backbone=resnet50, and its "
                                         r"weights are another network's: use a pre-training "
                                         r"run with --backbone=resnet50"):
        check_pretrained_backbone(train_config(weights, backbone="resnet50"), "eval_prior")
