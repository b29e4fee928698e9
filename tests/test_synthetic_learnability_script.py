"""scripts/synthetic_learnability.py: novel classes are learnable from the base classes."""

import json
import pathlib
import subprocess
import sys

import pytest

# Command-line runs in a subprocess: the marked tier (`pytest -m slow`).
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_a_probe_trained_on_base_classes_segments_novel_ones(tmp_path, synthetic_cache):
    out = tmp_path / "learnability.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "synthetic_learnability.py"),
         f"--cache_dir={synthetic_cache}", "--steps=300", "--episodes=150", f"--out={out}"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    miou = report["miou"]
    assert set(miou) == {"all_foreground", "every_object", "largest_object", "same_shape",
                         "same_texture", "probe_untrained", "probe_trained"}
    # Learnable: 300 steps on base-class episodes lift novel-class mIoU clearly above the
    # untrained probe and above predicting foreground everywhere.
    assert miou["probe_trained"] > miou["probe_untrained"] + 0.03, miou
    assert miou["probe_trained"] > miou["all_foreground"] + 0.02, miou
    assert "probe, trained" in result.stdout and "every object (oracle)" in result.stdout


def test_bad_scale_range_is_one_line():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "synthetic_learnability.py"),
                             "--scale_range=a,b"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
        "error: --scale_range=a,b is not accepted: give exactly 2 comma-separated numbers "
        ">= 0; empty for unset.")
    assert "Traceback" not in result.stderr
