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
    workers. The model and data sections run VGG16 at 17 px, one variant; the layer,
    pytorch and eval sections take the --quick values (33 px, batch 1, 4 test episodes),
    the pytorch section its SVF variant only (three processes that each build a ResNet-50
    per variant). Peak memory is measured by the pytorch section only (--nomemory: no
    memory process in the model and layer sections).
    """
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    sections = ["pytorch", "eval"] * HAS_TORCH + ["layer", "model", "data"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick",
         f"--sections={','.join(sections)}", "--pytorch_variants=svf", "--backbone=vgg16",
         "--model_size=17", "--model_variants=svf", "--nomemory", f"--out={out}"],
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
    assert "train_step_peak_mb" not in row  # --nomemory


@pytest.mark.parametrize("flag", ["--sections=gpu", "--pytorch_variants=gpu"])
def test_unknown_list_value_is_a_one_line_error(flag):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), flag],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "unknown value(s) ['gpu']" in result.stderr
    assert flag.split("=")[0] in result.stderr and "Traceback" not in result.stderr


def test_model_and_data_sections_and_the_target_table(quick):
    report, stdout = quick
    assert (report["settings"]["model_size"], report["settings"]["data_size"]) == (17, 33)
    (row,) = report["model"]
    assert row["jit_compile"] is False and set(row["seconds"]) == {"part", "svf"}
    assert row["ratio_to_part"]["part"] == 1.0 and row["seconds"]["svf"] > 0
    assert "memory_ratio_to_part" not in row  # --nomemory; the pytorch section's test has it
    # The work counted in the traced steps: S trains without kernel gradients of the convs.
    assert row["macs_ratio_to_part"]["part"] == 1.0 and set(row["gmacs"]) == {"part", "svf"}
    assert 0 < row["gmacs"]["svf"]["kernel_grad"] < row["gmacs"]["part"]["kernel_grad"]
    assert f"MACs x{row['macs_ratio_to_part']['svf']:.2f}" in stdout
    assert report["model_inference"]["ratio_merged"] > 0
    assert report["model_inference"]["macs_ratio_merged"] == 1.0  # the plain model's convs
    data = report["data"]
    assert data["pipeline_1shot_episodes_per_s"] > 0 and "eval_episodes_per_s" not in data
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
    (row,) = report["pytorch"]  # --pytorch_variants=svf
    assert row["variant"] == "svf" and report["settings"]["sizes"] == [33]
    assert row["train_ratio"] > 0 and row["eval_ratio"] > 0 and row["eval_ratio_factored"] > 0
    # svf-tf's eval forward is --mode=eval's merged model; the factored one is timed too.
    assert set(row["seconds"]) == {"svf_tf_train", "torch_train", "svf_tf_eval", "torch_eval",
                                   "svf_tf_eval_factored"}
    # Each framework's memory is measured in its own process: the PyTorch
    # process never loads TensorFlow, so its runtime is the smaller.
    assert row["runtime_mb"]["torch"] < row["runtime_mb"]["svf_tf"]
    assert row["step_peak_mb"]["torch"] > 0 and row["step_peak_mb"]["svf_tf"] > 0
    assert (f"| SVF on layer2-4, 33 px, batch 1 | {row['train_ratio']:.2f}x | "
            f"{row['eval_ratio']:.2f}x | {row['eval_ratio_factored']:.2f}x |") in stdout
    assert "train step <= 1.0x PyTorch (SVF on layer2-4, 33 px, batch 1)" in stdout
    targets = [t["target"] for t in report["targets"]]
    assert "eval forward <= 1.0x PyTorch (SVF on layer2-4, 33 px, batch 1)" in targets
    assert not any("frozen backbone" in target for target in targets)  # no row, no target


@pytest.mark.skipif(not HAS_TORCH, reason="needs PyTorch")
def test_quick_eval_section_compares_the_test_loops(quick):
    report, stdout = quick
    row = report["eval"]
    assert (row["episodes"], row["size"]) == (4, 33)
    tf_side, torch_side = row["svf_tf"], row["torch"]
    assert tf_side["episodes"] == torch_side["episodes"] == 4
    assert tf_side["episodes_per_s"] > 0 and torch_side["episodes_per_s"] > 0
    assert row["ratio"] == tf_side["episodes_per_s"] / torch_side["episodes_per_s"]
    assert 0.0 <= tf_side["miou"] <= 1.0 and 0.0 <= torch_side["miou"] <= 1.0
    targets = {t["target"]: t for t in report["targets"]}
    target = targets["evaluation of 4 episodes at 33 px >= 1.0x the reference's test loop "
                     "(episodes/s)"]
    assert target["measured"] == row["ratio"] and target["met"] == (row["ratio"] >= 1.0)
    assert "[eval] 4 test episodes at 33 px" in stdout
    assert f"svf-tf / PyTorch x{row['ratio']:.2f}" in stdout
