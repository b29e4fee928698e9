"""scripts/analyze_run.py on a tiny trained SVF run, as a user runs it (slow tier)."""

import json
import pathlib
import subprocess
import sys

import matplotlib.image
import pytest

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def run(script, *args):
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_every_figure_of_a_tiny_svf_run(tmp_path, linked_cache):
    cache, work = f"--cache_dir={linked_cache}", tmp_path / "svf"
    result = run("main.py", "--mode=train", "--synthetic", cache, f"--work_dir={work}",
                 "--backbone=vgg16", "--train_size=33", "--test_size=33", "--epochs=1",
                 "--steps_per_epoch=2", "--batch_size=2", "--test_episodes=2",
                 "--scale_range=0.5,0.6")
    assert result.returncode == 0, result.stderr[-3000:]
    # block5_conv3 (layer4) sits in the split backbone's model that takes features: its
    # cue maps are still drawn from the image.
    result = run("scripts/analyze_run.py", str(work), cache, "--analysis_images=2",
                 "--analysis_episodes=2", "--analysis_layers=block4_conv3,block5_conv3")
    assert result.returncode == 0, result.stderr[-3000:]
    out = work / "analysis"
    assert sorted(p.name for p in out.iterdir()) == [
        "cue_maps.json", "cue_maps_block4_conv3.png", "cue_maps_block5_conv3.png",
        "curves.json", "curves.png", "gallery.json", "gallery.png", "singular_values.json",
        "sv_block4_conv3.png", "sv_block5_conv3.png", "sv_grid_layer3_3x3.png",
        "sv_overview.png"]
    for png in out.glob("*.png"):
        assert matplotlib.image.imread(str(png)).std() > 0
    gallery = json.loads((out / "gallery.json").read_text())
    assert len(gallery["episodes"]) == 2 and len(gallery["episodes"][0]["iou"]) == 1
    layers = json.loads((out / "singular_values.json").read_text())["layers"]
    assert len(layers) == 13 and layers[-1]["path"].endswith("block5_conv3")  # VGG16 convs
    curves = json.loads((out / "curves.json").read_text())["rows"][0]
    assert curves["train_key"] == "train/miou"  # recorded by the trainer
    history = json.loads((work / "history.json").read_text())
    assert curves["curves"]["train_base_miou"]["mean"] == [r["train/miou"] for r in history]
    result = run("scripts/analyze_run.py", str(work), "--analysis_layers=conv9",
                 "--analysis_figures=singular_values")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: --analysis_layers: 'conv9' is not an SVF layer of this run; the SVF " \
        "layers are: block1_conv1," in result.stderr
