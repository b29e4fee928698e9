"""scripts/benchmark.py runs and reports its figures (speed targets live in the script)."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

# Command-line runs in a subprocess: the marked tier (`pytest -m slow`).
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def quick(tmp_path_factory, synthetic_cache):
    """(report, stdout) of one `--quick` run of every section but build, shared by the tests.

    One process instead of three: the sections are independent, and each starts its own
    workers. The model and data sections run VGG16 at 17 px, one variant, no memory
    processes; the layer and pytorch sections take the --quick values (33 px, batch 1).
    """
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    sections = ["pytorch"] * HAS_TORCH + ["layer", "model", "data"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick",
         f"--sections={','.join(sections)}", "--backbone=vgg16", "--model_size=17",
         "--model_variants=svf", "--nomemory", f"--out={out}"],
        capture_output=True, text=True, timeout=1800,
        env={**os.environ, "SVF_TF_CACHE": synthetic_cache})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(out.read_text()), result.stdout


def test_layer_section_writes_ratios(quick):
    report, stdout = quick
    assert report["machine"]["tensorflow"].startswith("2.")
    assert (report["settings"]["size"], report["settings"]["batch"]) == (6, 1)
    (row,) = report["layer"]
    assert set(row["train_seconds"]) == {"plain", "svf_kernel", "svf_factored"}
    assert all(value > 0 for value in row["train_seconds"].values())
    assert row["infer_ratio_merged"] > 0 and "conv4_1x1_out" in stdout


def test_unknown_section_is_a_one_line_error():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"),
                             "--sections=gpu"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "unknown value(s) ['gpu']" in result.stderr
    assert "Traceback" not in result.stderr


def test_model_and_data_sections_and_the_target_table(quick):
    report, stdout = quick
    assert (report["settings"]["model_size"], report["settings"]["data_size"]) == (17, 33)
    (row,) = report["model"]
    assert row["jit_compile"] is False and set(row["seconds"]) == {"part", "svf"}
    assert row["ratio_to_part"]["part"] == 1.0 and row["seconds"]["svf"] > 0
    assert "memory_ratio_to_part" not in row  # --nomemory; memory is run in the layer test
    assert report["model_inference"]["ratio_merged"] > 0
    data = report["data"]
    assert data["pipeline_1shot_episodes_per_s"] > 0 and data["eval_episodes_per_s"] > 0
    assert data["pipeline_over_consumption_1shot"] == (
        data["pipeline_1shot_episodes_per_s"] / data["svf_step_episodes_per_s"])
    targets = {t["target"]: t for t in report["targets"]}
    svf_step = targets["SVF step <= 0.75x partial fine-tuning of layer2-4 (no XLA)"]
    assert svf_step["measured"] == row["ratio_to_part"]["svf"]
    assert svf_step["met"] == (row["ratio_to_part"]["svf"] <= 0.75)
    assert "[targets]" in stdout


@pytest.mark.skipif(not HAS_TORCH, reason="needs PyTorch")
def test_quick_pytorch_section_prints_the_issue_table(quick):
    report, stdout = quick
    rows = {row["variant"]: row for row in report["pytorch"]}
    assert set(rows) == {"svf", "freeze"} and report["settings"]["sizes"] == [33]
    for row in rows.values():
        assert row["train_ratio"] > 0 and row["eval_ratio"] > 0
        assert set(row["seconds"]) == {"svf_tf_train", "torch_train", "svf_tf_eval",
                                       "torch_eval"}
        # Each framework's memory is measured in its own process: the PyTorch
        # process never loads TensorFlow, so its runtime is the smaller.
        assert row["runtime_mb"]["torch"] < row["runtime_mb"]["svf_tf"]
        assert row["step_peak_mb"]["torch"] > 0 and row["step_peak_mb"]["svf_tf"] > 0
    assert "| SVF on layer2-4, 33 px, batch 1 |" in stdout
    assert "train step <= 1.0x PyTorch (frozen backbone, 33 px, batch 1)" in stdout
