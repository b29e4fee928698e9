"""`python main.py --mode=pretrain` (Standard, BCPT) and `--mode=eval_prior`, synthetic data."""

import json

import pytest

from tests.test_main import run_main

pytestmark = pytest.mark.slow  # main.py in a subprocess, a real (tiny-input) VGG16-BN

DATA = ["--synthetic", "--backbone=vgg16", "--test_size=33"]
PRETRAIN = ["--mode=pretrain", *DATA, "--train_size=33", "--epochs=1", "--steps_per_epoch=2",
            "--batch_size=2", "--val_images=4", "--strategy=default"]


@pytest.fixture(scope="module")
def bcpt_run(synthetic_cache, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("bcpt") / "run"
    result = run_main(*PRETRAIN, "--pretrain=bcpt", f"--cache_dir={synthetic_cache}",
                      f"--work_dir={work_dir}")
    assert result.returncode == 0, result.stderr
    return work_dir, result


def test_bcpt_pretraining_writes_the_backbone(bcpt_run):
    work_dir, result = bcpt_run
    assert f"--weights={work_dir}/best/backbone.weights.h5" in result.stdout
    assert (work_dir / "best" / "backbone.weights.h5").is_file()
    record = json.loads((work_dir / "run.json").read_text())
    assert record["mode"] == "pretrain" and record["settings"]["pretrain"] == "bcpt"


def test_standard_pretraining_is_bam_stage1(synthetic_cache, tmp_path):
    result = run_main(*PRETRAIN, "--pretrain=standard", f"--cache_dir={synthetic_cache}",
                      f"--work_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "best" / "backbone.weights.h5").is_file()
    assert (tmp_path / "best" / "base_learner.weights.h5").is_file()  # BAM's stage-1 files


def test_eval_prior_scores_random_and_pretrained_backbones(bcpt_run, synthetic_cache,
                                                           tmp_path):
    backbone = bcpt_run[0] / "best" / "backbone.weights.h5"
    for weights in ([], [f"--weights={backbone}"]):
        result = run_main("--mode=eval_prior", *DATA, "--test_episodes=4",
                          f"--cache_dir={synthetic_cache}", f"--work_dir={tmp_path}", *weights)
        assert result.returncode == 0, result.stderr
        assert "mIoU" in result.stdout
    results = json.loads((tmp_path / "eval_prior.json").read_text())
    assert sorted(results) == sorted(["random @ 0.5", f"{backbone} @ 0.5"])
    assert all(0 <= r["summary"]["miou_mean"] <= 1 for r in results.values())


@pytest.mark.parametrize("flag, line", [
    ("--bcpt_momentum=1", "error: --bcpt_momentum=1 is not accepted: give a number in [0, 1), "
                          "e.g. the paper's 0.999."),
    ("--bcpt_clusters=1", "error: --bcpt_clusters=1 is not accepted: give an integer >= 2."),
    ("--bcpt_alpha=-1", "error: --bcpt_alpha=-1 is not accepted: give a number >= 0."),
])
def test_bad_pretraining_settings_are_one_line(flag, line, tmp_path):
    result = run_main(*PRETRAIN, flag, f"--work_dir={tmp_path}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [line]


def test_bad_threshold_is_one_line(tmp_path):
    result = run_main("--mode=eval_prior", *DATA, "--prior_threshold=1.5",
                      f"--work_dir={tmp_path}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: --prior_threshold=1.5 is not accepted: give a number in [0, 1]."]


def test_meta_training_takes_the_pretrained_backbone_of_its_fold_only(bcpt_run,
                                                                      synthetic_cache,
                                                                      tmp_path):
    weights = f"--weights={bcpt_run[0]}/best/backbone.weights.h5"
    train = ["--mode=train", *DATA, "--train_size=33", "--epochs=1", "--steps_per_epoch=1",
             "--batch_size=2", "--test_episodes=4", "--finetune=freeze", "--strategy=default",
             f"--cache_dir={synthetic_cache}", weights]
    refused = run_main(*train, "--fold=1", f"--work_dir={tmp_path}/fold1")
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "has seen fold 1's novel classes annotated" in refused.stderr
    result = run_main(*train, "--fold=0", f"--work_dir={tmp_path}/fold0")
    assert result.returncode == 0, result.stderr
    assert "best validation mIoU" in result.stdout
