"""scripts/replicate_finetuning.py at tiny settings: files, figure, curves, rerun, refusals."""

import json
import pathlib
import subprocess
import sys

import matplotlib.image
import pytest

from svf_tf.finetune_comparison.curves import figure_pixels

# Command-line runs in a subprocess: the marked tier (`pytest -m slow`).
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / "scripts" / "replicate_finetuning.py")
TINY = ["--tiny", "--backbone=vgg16", "--settings=freeze,svf_234", "--epochs=3"]


def run(*args, code=None):
    command = ([sys.executable, SCRIPT, *args] if code is None
               else [sys.executable, "-c", code, SCRIPT, *args])
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A small saved VGG16-BN backbone (random weights) made here, as --weights takes it."""
    from svf_tf.backbones import build_backbone

    path = tmp_path_factory.mktemp("weights") / "vgg16_bn.weights.h5"
    build_backbone("vgg16", None, batch_norm=True).save_weights(str(path))
    return str(path)


def test_tiny_comparison_writes_table_figure_and_curves_and_a_rerun_skips(
        tmp_path, synthetic_cache, weights):
    out = tmp_path / "comparison"
    args = [*TINY, f"--weights={weights}", f"--cache_dir={synthetic_cache}", f"--out_dir={out}"]
    first = run(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    results = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in results["settings"]] == ["freeze", "svf_234"]
    assert [(r["setting"], r["seed"], r["trained_now"]) for r in results["runs"]] == [
        ("freeze", 321, True), ("svf_234", 321, True)]
    for row in results["settings"]:
        assert set(row["curves"]) == {"train_base_miou", "val_novel_miou"}
        for curve in row["curves"].values():  # one point per epoch (--epochs=3)
            assert curve["epochs"] == [1, 2, 3] and len(curve["mean"]) == 3
            assert all(0.0 <= value <= 1.0 for value in curve["mean"])
        assert row["metrics"]["novel_miou_best"]["std"] is None  # one seed
    freeze, svf = results["runs"]
    assert freeze["trainable_values"]["backbone"] == 0
    assert svf["trainable_values"]["backbone"] == svf["trainable_values"]["singular_values"] > 0
    assert svf["options"] == {"finetune": "svf", "finetune_stages": [2, 3, 4],
                              "conv_kinds": ["1x1", "3x3"], "train_bn": False,
                              "svf_factors": ["S"]}
    assert [e["epoch"] for e in svf["history"]] == [1, 2, 3]
    assert all("base/miou" in e and "miou" in e for e in svf["history"])
    assert results["shared_settings"]["weights"] == weights
    assert results["shared_settings"]["train_size"] == 33
    image = matplotlib.image.imread(str(out / "curves.png"))
    assert image.shape[:2] == figure_pixels()
    markdown = (out / "results.md").read_text()
    assert results["table"] in markdown and results["table"] in first.stdout
    assert "| frozen backbone (`freeze`) | 0 |" in results["table"]
    # Finished runs keep their numbers, not their checkpoints.
    run_dir = out / "svf_234" / "seed321"
    assert (run_dir / "summary.json").is_file() and not (run_dir / "latest").exists()
    assert not list((run_dir / "best").glob("ckpt-*"))

    again = run(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished before, read from") == 2
    assert "=== [" not in again.stdout  # nothing trained
    rerun = json.loads((out / "results.json").read_text())
    assert [r["trained_now"] for r in rerun["runs"]] == [False, False]
    assert rerun["settings"][1]["metrics"] == results["settings"][1]["metrics"]

    # Another experiment in the same --out_dir is refused in one line, not mixed in.
    other = run(*[a for a in args if a != "--epochs=3"], "--epochs=2")
    assert other.returncode == 1 and "Traceback" not in other.stderr
    line = other.stderr.strip().splitlines()[-1]
    assert line.startswith("error: --work_dir=") and "--epochs was '3' there, '2' here" in line
    fewer = run(*args, "--base_episodes=3")
    assert fewer.returncode == 1
    assert fewer.stderr.strip().splitlines()[-1] == (
        f"error: --out_dir={str(out)!r} holds runs scored on 4 base-class episodes per epoch, "
        "not 3: rerun with --base_episodes=4 to resume them, or give another --out_dir.")


def test_bad_options_are_one_line(tmp_path):
    bad = run("--settings=freeze,nope", f"--out_dir={tmp_path}")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith(
        "error: --settings: no setting named 'nope'; choose from freeze,full,")
    both = run("--quick", "--tiny", f"--out_dir={tmp_path}")
    assert both.stderr.strip().splitlines()[-1] == (
        "error: --quick and --tiny were both given; choose one.")
    missing = run("--tiny", f"--weights={tmp_path}/none.weights.h5", f"--out_dir={tmp_path}")
    assert missing.returncode == 1 and "none.weights.h5': no such file" in missing.stderr
    seeds = run("--tiny", "--seeds=1,x", f"--out_dir={tmp_path}")
    assert seeds.stderr.strip().splitlines()[-1] == (
        "error: --seeds=1,x is not accepted: give non-negative integers separated by commas, "
        "e.g. 321,322,323.")


def test_without_weights_it_starts_from_the_cached_synthetic_backbone(tmp_path, linked_cache,
                                                                     weights):
    # A cache entry for the default pre-training settings, as the first use leaves it
    # (here holding the fixture's backbone, so that nothing is pre-trained).
    from svf_tf.weights import synthetic_backbone

    cache = linked_cache
    cached = synthetic_backbone.publish(
        synthetic_backbone.pretrain_config("vgg16", cache_dir=str(cache)), weights)
    out = tmp_path / "comparison"
    result = run("--tiny", "--backbone=vgg16", "--settings=freeze", "--epochs=1",
                 f"--cache_dir={cache}", f"--out_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"vgg16: synthetic pre-trained backbone from the cache ({cached})" in result.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["shared_settings"]["weights"] == cached
    assert "(synthetic pre-trained weights)" in results["description"]
