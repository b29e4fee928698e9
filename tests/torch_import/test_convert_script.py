"""scripts/convert_torch_checkpoint.py, run as a user would."""

import os
import subprocess
import sys

import numpy as np
import pytest

# Command-line runs in a subprocess: the marked tier (`pytest -m slow`).
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "convert_torch_checkpoint.py")


def run_script(*args, env=None):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=300)


def last_error_line(result):
    """The script's own error line (TensorFlow may log to stderr before it)."""
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.torch
def test_converts_vgg16_bn_and_the_weights_load(tmp_path):
    torch = pytest.importorskip("torch")
    from svf_tf.backbones import build_backbone
    from tests.torch_import.torch_reference import VGG16BN, randomize

    net = randomize(VGG16BN(), seed=51)
    checkpoint, output = tmp_path / "vgg16_bn.pth", tmp_path / "vgg16_bn.weights.h5"
    torch.save(net.state_dict(), checkpoint)

    result = run_script(f"--checkpoint={checkpoint}", "--target=vgg16_bn", f"--output={output}")

    assert result.returncode == 0, result.stderr
    assert "vgg16_bn: 78 loaded, 15 skipped, 0 unplaced; 0 Keras variables not set" in \
        result.stdout
    assert "features.40.weight" in result.stdout and "block5_conv3/kernel" in result.stdout
    assert f"wrote {output}" in result.stdout
    backbone = build_backbone("vgg16", weights=str(output), batch_norm=True)
    np.testing.assert_array_equal(backbone.get_layer("block1_conv1").kernel.numpy(),
                                  net.features[0].weight.detach().numpy().transpose(2, 3, 1, 0))

    # An unknown tensor: the report is printed, the run fails, nothing is written.
    state = net.state_dict()
    state["aux_head.weight"] = torch.zeros(2, 2)
    torch.save({"state_dict": state}, checkpoint)
    failed = tmp_path / "failed.weights.h5"
    result = run_script(f"--checkpoint={checkpoint}", "--target=vgg16_bn", f"--output={failed}")
    assert result.returncode == 1
    assert "UNPLACED (1)" in result.stdout and "aux_head.weight" in result.stdout
    assert last_error_line(result).startswith("error: vgg16_bn: 78 loaded")
    assert "--allow_unplaced" in last_error_line(result)
    assert not failed.exists()


def test_without_torch_the_error_says_how_to_install_it(tmp_path):
    fake = tmp_path / "no_torch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    checkpoint = tmp_path / "resnet50_v2.pth"
    checkpoint.write_bytes(b"x")
    path = os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])

    result = run_script(f"--checkpoint={checkpoint}", "--target=resnet50_deep_stem",
                        env={"PYTHONPATH": path})

    assert result.returncode == 1
    assert last_error_line(result).startswith("error: PyTorch is needed only to read .pth")
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in \
        last_error_line(result)
    assert "Traceback" not in result.stderr


@pytest.mark.torch
def test_a_checkpoint_that_runs_code_is_one_error_line_and_nothing_runs(tmp_path):
    torch = pytest.importorskip("torch")
    from tests.torch_import.hostile_pickles import HostileCall

    marker, checkpoint = tmp_path / "payload_ran", tmp_path / "hostile.pth"
    output = tmp_path / "out.weights.h5"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": HostileCall("os.system", marker)},
               checkpoint)

    result = run_script(f"--checkpoint={checkpoint}", "--target=vgg16_bn", f"--output={output}")

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == last_error_line(result), result.stderr
    assert "was refused because it tried to run code" in errors[0]
    assert "import and call os.system" in errors[0] and "nothing ran" in errors[0]
    assert "Traceback" not in result.stderr
    assert not marker.exists() and not output.exists()


@pytest.mark.torch
def test_a_truncated_checkpoint_is_one_error_line_saying_so(tmp_path):
    torch = pytest.importorskip("torch")
    checkpoint = tmp_path / "half.pth"
    torch.save({"w": torch.ones(1000)}, checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:2000])

    result = run_script(f"--checkpoint={checkpoint}", "--target=vgg16_bn")

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert last_error_line(result).startswith(f"error: checkpoint '{checkpoint}' is not a "
                                              "readable PyTorch file")
    assert "truncated download" in last_error_line(result)
