"""main.py end to end, as a user runs it."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

# Command-line runs in a subprocess: the marked tier (`pytest -m slow`).
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_main(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def test_svf_example_writes_summary_adapter_and_saved_model(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "svf_demo.py"), f"--work_dir={tmp_path}",
         "--backbone=vgg16", "--image_size=48", "--steps=2"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
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
    result = run_main("--mode=train", f"--work_dir={tmp_path}/w")
    assert result.returncode == 1 and "No dataset: give --data_root" in result.stderr
    result = run_main("--mode=train", f"--data_root={tmp_path}/nope", f"--work_dir={tmp_path}/w")
    assert result.returncode == 1 and f"{tmp_path}/nope" in result.stderr
    result = run_main("--mode=eval", f"--work_dir={tmp_path}/w")
    assert result.returncode == 1 and "No trained run in" in result.stderr
    result = run_main("--fold=4")
    assert result.returncode != 0 and "fold" in result.stderr and "Traceback" not in result.stderr
    result = run_main("--train_size=100")
    assert result.returncode == 1 and "e.g. 97 or 105" in result.stderr
    result = run_main("--scale_range=0.3,0.2")
    assert result.returncode == 1 and "error: --scale_range=0.3,0.2 is not accepted: give two " \
        "numbers 0 < min <= max" in result.stderr


def test_tiny_training_run_from_the_command_line(tmp_path, linked_cache):
    result = run_main("--mode=train", "--synthetic", f"--cache_dir={linked_cache}",
                      f"--work_dir={tmp_path}/run", "--backbone=vgg16", "--train_size=33",
                      "--test_size=33", "--epochs=1", "--steps_per_epoch=2", "--batch_size=2",
                      "--test_episodes=4", "--svf_rank_multiple=1", "--scale_range=0.5,0.6")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["svf_trainable_values"] == 3840
    assert summary["config"]["data"]["scale_range"] == [0.5, 0.6]
    assert (tmp_path / "run" / "flags.txt").read_text().count("--mode=train") == 1
    assert "best validation mIoU" in result.stdout


def test_bam_with_a_missing_base_learner_is_one_line(tmp_path):
    result = run_main("--mode=train", "--synthetic", "--method=bam", "--backbone=vgg16",
                      f"--work_dir={tmp_path}/w", f"--cache_dir={tmp_path}/cache",
                      f"--base_learner={tmp_path}/none.weights.h5")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--base_learner='{tmp_path}/none.weights.h5': no such file" in result.stderr
    assert "--mode=train_base" in result.stderr


def all_foreground_miou(episode_file, root, num_classes):
    """Few-shot mIoU of predicting every pixel as foreground, by hand (PFENet's pooled IoU)."""
    import cv2
    import numpy as np

    lines = pathlib.Path(episode_file).read_text().splitlines()
    header, episodes = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert len(episodes) == header["count"]
    intersection, union = np.zeros(num_classes), np.zeros(num_classes)
    for episode in episodes:
        label = cv2.imread(os.path.join(root, episode["query_label"]), cv2.IMREAD_UNCHANGED)
        slot = episode["class_slot"]
        kept = label != 255
        intersection[slot] += np.sum(kept & (label == episode["class_id"]))
        union[slot] += np.sum(kept)
    return float(np.mean(intersection / np.maximum(union, 1e-10)))


def test_builtin_demo_path_with_a_tiny_setting(tmp_path, linked_cache):
    """The README's first command (`main.py` = `--mode=demo`), shrunk to a few steps.

    The cache holds a synthetic pre-trained VGG16-BN for the default settings, as
    the first demo leaves it (here a random one, so that nothing is pre-trained).
    """
    from svf_tf.backbones import build_backbone
    from svf_tf.weights import synthetic_backbone

    cache = linked_cache
    made = tmp_path / "vgg16_bn.weights.h5"
    build_backbone("vgg16", None, batch_norm=True).save_weights(str(made))
    cached = synthetic_backbone.publish(
        synthetic_backbone.pretrain_config("vgg16", cache_dir=str(cache)), str(made))
    result = run_main("--synthetic", f"--cache_dir={cache}", f"--work_dir={tmp_path}/demo",
                      "--backbone=vgg16", "--train_size=33", "--test_size=33", "--epochs=1",
                      "--steps_per_epoch=2", "--batch_size=2", "--test_episodes=10",
                      "--svf_rank_multiple=1", env={"KERAS_HOME": str(tmp_path / "keras")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"vgg16: synthetic pre-trained backbone from the cache ({cached})" in result.stdout
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["mode"] == "demo" and summary["weights"] == cached
    assert set(summary["runs"]) == {"freeze", "svf"}
    assert summary["runs"]["freeze"]["svf_trainable_values"] == 0
    assert summary["runs"]["svf"]["svf_trainable_values"] == 3840  # VGG16-BN layers 2-4
    for name in ("freeze", "svf"):
        assert (tmp_path / "demo" / name / "summary.json").is_file()
        assert f"\n{name} " in result.stdout  # a row of the final table
    # The references, on the episodes the runs were scored on.
    references = summary["references"]
    assert set(references) == {"untrained", "all foreground"}
    assert 0.0 <= references["untrained"]["miou"] <= 1.0
    freeze = json.loads((tmp_path / "demo" / "freeze" / "summary.json").read_text())
    expected = all_foreground_miou(freeze["test_episodes_file"], cache / "synthetic_pascal", 5)
    assert references["all foreground"]["miou"] == pytest.approx(expected, abs=1e-6)
    assert expected > 0.01
    assert f"all foreground {100 * expected:7.2f}" in result.stdout
    assert str(tmp_path / "demo") in result.stderr  # where the work directory is
