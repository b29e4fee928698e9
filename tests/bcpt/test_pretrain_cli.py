"""`python main.py --mode=pretrain`, Standard and BCPT, on the synthetic dataset (tiny VGG)."""

import json

import pytest

from tests.test_main import run_main

pytestmark = pytest.mark.slow  # main.py in a subprocess, a real (tiny-input) VGG16-BN

TINY = ["--mode=pretrain", "--synthetic", "--backbone=vgg16", "--train_size=33",
        "--test_size=33", "--epochs=1", "--steps_per_epoch=2", "--batch_size=2",
        "--val_images=4", "--strategy=default"]


@pytest.mark.parametrize("scheme", ["standard", "bcpt"])
def test_pretrain_writes_the_backbone_for_meta_training(scheme, synthetic_cache, tmp_path):
    result = run_main(*TINY, f"--pretrain={scheme}", f"--cache_dir={synthetic_cache}",
                      f"--work_dir={tmp_path}/run")
    assert result.returncode == 0, result.stderr
    assert f"--weights={tmp_path}/run/best/backbone.weights.h5" in result.stdout
    assert (tmp_path / "run" / "best" / "backbone.weights.h5").is_file()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["mode"] == "pretrain" and record["settings"]["pretrain"] == scheme


def test_pretrain_refuses_a_bad_setting_in_one_line(tmp_path):
    result = run_main(*TINY, "--bcpt_momentum=1", f"--work_dir={tmp_path}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: --bcpt_momentum=1 is not accepted: give a number in [0, 1), e.g. the paper's "
        "0.999."]
