"""main.py end to end, as a user runs it."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_main(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_demo_writes_summary_adapter_and_saved_model(tmp_path):
    result = run_main(f"--work_dir={tmp_path}", "--backbone=vgg16", "--image_size=48",
                      "--steps=2")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["svf_layers"] == 9  # VGG16 blocks 3-5
    assert summary["untouched_relative_error"] < 1e-5
    assert summary["merged_max_abs_error"] < 1e-4
    assert (tmp_path / "adapter.svf.npz").is_file()
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
    assert "svf_trainable_values" in result.stdout


def test_bad_input_is_one_line_without_traceback(tmp_path):
    result = run_main("--backbone=alexnet")
    assert result.returncode != 0
    assert "alexnet" in result.stderr and "Traceback" not in result.stderr
    result = run_main(f"--flagfile={tmp_path}/missing.cfg")
    assert result.returncode != 0 and "missing.cfg" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_main("stray")
    assert result.returncode == 1 and "error: unexpected arguments ['stray']" in result.stderr
