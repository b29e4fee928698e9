"""Reading checkpoints: lazy torch import, weights_only, unwrapping and prefixes."""

import sys

import numpy as np
import pytest

from svf_tf.torch_import import (
    TorchNotInstalledError,
    convert_checkpoint,
    load_checkpoint,
    unwrap_checkpoint,
)
from svf_tf.torch_import.state_dict_io import strip_module_prefix, to_numpy
from tests.torch_import.hostile_pickles import HOSTILE_CALLS, HostileCall


def _touch(path):
    """What a malicious pickle would run on load: here, create a file."""
    with open(path, "w") as file:
        file.write("unpickled")
    return path


class Payload:
    """An object whose unpickling runs `_touch` (as a hostile checkpoint would)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return _touch, (self.path,)


def test_plain_state_dict_is_used_as_is():
    state = {"conv1.weight": np.zeros((2, 3, 3, 3), np.float32)}
    assert unwrap_checkpoint(state) == (state, [])


def test_wrapped_state_dict_reports_the_other_entries():
    state = {"a.weight": np.ones(2, np.float32)}
    unwrapped, ignored = unwrap_checkpoint({"state_dict": state, "optimizer": {}, "epoch": 3})
    assert unwrapped is state
    assert ignored == ["epoch", "optimizer"]


@pytest.mark.parametrize("checkpoint, message", [
    ([1, 2], "holds a list, not a state dict"),
    ({"epoch": 3, "args": "x"}, "has no tensors and no 'state_dict' entry"),
])
def test_a_checkpoint_without_a_state_dict_is_refused(checkpoint, message):
    with pytest.raises(ValueError, match=message):
        unwrap_checkpoint(checkpoint)


def test_module_prefix_is_removed_and_clashes_are_refused():
    value = np.zeros(1)
    assert list(strip_module_prefix({"module.layer0.0.weight": value, "fc.bias": value})) == [
        "layer0.0.weight", "fc.bias"]
    with pytest.raises(ValueError, match="'fc.bias' appears both with and without"):
        strip_module_prefix({"module.fc.bias": value, "fc.bias": value})


def test_missing_torch_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    path = tmp_path / "resnet50_v2.pth"
    path.write_bytes(b"not read")
    with pytest.raises(TorchNotInstalledError, match=r"pip install torch --index-url"):
        load_checkpoint(path)
    # The conversion fails the same way, before building any model.
    with pytest.raises(TorchNotInstalledError, match="CPU build"):
        convert_checkpoint(path, "vgg16_bn", tmp_path / "out.weights.h5")


@pytest.mark.torch
def test_checkpoint_with_an_arbitrary_object_is_refused_unexecuted(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "payload_ran"
    path = tmp_path / "hostile.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": Payload(str(marker))}, path)
    with pytest.raises(ValueError, match="refused because it tried to run code") as error:
        load_checkpoint(path)
    # Names what was refused.
    assert "import and call " in str(error.value)
    assert "test_state_dict_io._touch" in str(error.value)
    assert not marker.exists()


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(HOSTILE_CALLS))
def test_code_running_payloads_are_refused_and_nothing_runs(tmp_path, name):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "payload_ran"
    path = tmp_path / f"{name}.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": HostileCall(name, marker)}, path)
    output = tmp_path / "out.weights.h5"

    with pytest.raises(ValueError) as error:
        convert_checkpoint(path, "vgg16_bn", output)

    message = str(error.value)
    assert not marker.exists() and not output.exists()
    assert "\n" not in message and str(path) in message
    assert "was refused because it tried to run code" in message
    assert f"import and call {name}" in message and "nothing ran" in message
    assert "re-save its state dict with PyTorch" in message
    # The payload is live: an unrestricted unpickler would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.torch
def test_pickle_protocol_4_is_refused_not_called_truncated(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "payload_ran"
    path = tmp_path / "protocol4.pth"
    torch.save({"extra": HostileCall("os.system", marker)}, path, pickle_protocol=4)
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "was refused because it uses the pickle instruction FRAME" in message
    assert "nothing ran" in message and "truncated" not in message
    assert not marker.exists()


@pytest.mark.torch
def test_unreadable_and_missing_files(tmp_path):
    pytest.importorskip("torch")
    garbage = tmp_path / "garbage.pth"
    # Random bytes of many kinds (each fails the unpickler differently), and a truncated file.
    for seed in range(40):
        garbage.write_bytes(np.random.default_rng(seed).bytes(64))
        with pytest.raises(ValueError, match="garbage.pth' is not a readable PyTorch file"):
            load_checkpoint(garbage)
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(3)}, garbage)
    whole = garbage.read_bytes()
    for keep in (100, len(whole) // 2, len(whole) - 30):
        garbage.write_bytes(whole[:keep])
        with pytest.raises(ValueError, match="garbage.pth' is not a readable PyTorch file") \
                as error:
            load_checkpoint(garbage)
        assert "truncated download" in str(error.value)
        assert "refused" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pth")


@pytest.mark.torch
def test_saved_tensors_come_back_as_float32_numpy(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "half.pth"
    torch.save({"module.w": torch.arange(4, dtype=torch.float16),
                "module.n": torch.tensor(7)}, path)
    state, ignored = unwrap_checkpoint(load_checkpoint(path))
    w, n = to_numpy(state["module.w"]), to_numpy(state["module.n"])
    assert w.dtype == np.float32 and w.tolist() == [0, 1, 2, 3]
    assert n.dtype == np.int64 and ignored == []
