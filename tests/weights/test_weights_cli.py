"""--weights and --partial_weights through main.py, as a user meets them."""

import pathlib
import subprocess
import sys

import pytest

# Command-line runs in a subprocess: the marked tier (`pytest -m slow`).
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def run_main(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_vgg16_bn_weights_into_plain_vgg16_is_one_error_line_unless_partial(tmp_path,
                                                                          linked_cache):
    from svf_tf.backbones import build_backbone

    weights = tmp_path / "vgg16_bn.weights.h5"
    build_backbone("vgg16", batch_norm=True).save_weights(str(weights))
    common = ["--mode=train", "--synthetic", f"--cache_dir={linked_cache}",
              "--backbone=vgg16", "--novgg_batch_norm", f"--weights={weights}",
              "--train_size=33", "--test_size=33", "--epochs=1", "--steps_per_epoch=1",
              "--batch_size=2", "--test_episodes=2", "--svf_rank_multiple=1"]

    result = run_main(*common, f"--work_dir={tmp_path}/refused")

    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert f"weights='{weights}' does not fit" in errors[0]
    assert "13 layers of the file unused (block1_bn1, block1_bn2, block2_bn1, ... 10 more)" \
        in errors[0]
    assert "--vgg_batch_norm" in errors[0] and "--partial_weights" in errors[0]
    assert len(errors[0]) < 400

    result = run_main(*common, "--partial_weights", f"--work_dir={tmp_path}/partial")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded partially" in result.stderr and "block1_bn1" in result.stderr
