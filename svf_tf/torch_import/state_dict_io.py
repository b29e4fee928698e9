"""Reading a PyTorch checkpoint safely into a flat {key: numpy array} dict.

PyTorch is an optional dependency, needed only here: it is imported when a
checkpoint is read, never when `svf_tf` is imported. Checkpoints are loaded
with `torch.load(..., weights_only=True)`, which unpickles tensors and plain
containers only and refuses any other object, so a malicious or foreign
`.pth` cannot run code.

The references save checkpoints in three shapes, all accepted:
- a plain state dict (`resnet50_v2.pth`, `vgg16_bn.pth`);
- `{"epoch": ..., "state_dict": {...}, "optimizer": {...}}` (PFENet, BAM
  and the SVF code after training; stage-1 PSPNet `best.pth`);
- either of them with every key prefixed by `module.`, as
  `DataParallel`/`DistributedDataParallel` models save them.
"""

import collections.abc
import importlib
import os
import pickle
import re

import numpy as np

TORCH_INSTALL_HINT = (
    "PyTorch is needed only to read .pth checkpoints (scripts/convert_torch_checkpoint.py). "
    "Install the CPU build: pip install torch --index-url "
    "https://download.pytorch.org/whl/cpu (or pip install -r requirements-dev.txt).")

# DataParallel / DistributedDataParallel wrap the model as `.module`.
MODULE_PREFIX = "module."
STATE_DICT_ENTRY = "state_dict"


class TorchNotInstalledError(ImportError):
    """PyTorch is missing; the message says how to install it."""


def import_torch():
    """Imports and returns `torch`, or raises `TorchNotInstalledError` with the install command."""
    try:
        return importlib.import_module("torch")
    except ImportError as error:
        raise TorchNotInstalledError(f"{TORCH_INSTALL_HINT} ({error})") from error


def load_checkpoint(path):
    """`torch.load(path, map_location="cpu", weights_only=True)`, with readable errors.

    Args:
        path: a `.pth`/`.pt` file.

    Returns:
        The unpickled object (a dict of tensors, or a dict holding one).

    Raises:
        TorchNotInstalledError: PyTorch is not installed.
        FileNotFoundError: no such file.
        ValueError: the file holds objects other than tensors and plain
            containers (refused, never unpickled), or is not a PyTorch file.
    """
    torch = import_torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r}: no such file.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch reports both a forbidden object and a corrupt file this way.
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if refused:
            raise ValueError(
                f"checkpoint {path!r} was refused: it holds a pickled {refused[1]}, and it is "
                "read with torch.load(weights_only=True), which never unpickles objects other "
                "than tensors and plain containers. If you trust the file, re-save its state "
                "dict alone in PyTorch: torch.save(torch.load(path, weights_only=False)"
                "['state_dict'], 'clean.pth').") from error
        raise _unreadable(path, error) from error
    except Exception as error:
        # Corrupt bytes make the (weights-only) unpickler fail in many ways:
        # EOFError, IndexError, KeyError, struct.error, UnicodeDecodeError, ...
        raise _unreadable(path, error) from error


def _unreadable(path, error):
    detail = re.search(r"WeightsUnpickler error: (.*)", str(error))
    reason = detail[1] if detail else " ".join(str(error).split())[:200]
    return ValueError(
        f"checkpoint {path!r} is not a readable PyTorch file ({reason}); a truncated download "
        "or an HTML error page?")


def is_tensor(value) -> bool:
    """Whether a value is a torch tensor or a numpy array (without importing torch)."""
    return isinstance(value, np.ndarray) or (
        hasattr(value, "detach") and hasattr(value, "shape") and hasattr(value, "dtype"))


def to_numpy(value) -> np.ndarray:
    """A tensor as a numpy array; floating tensors (also half/bfloat16) become float32."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value
    tensor = value.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.numpy()


def unwrap_checkpoint(checkpoint):
    """The state dict inside a checkpoint, and the names of the entries left out.

    Args:
        checkpoint: what `load_checkpoint` returned, or a state dict.

    Returns:
        (state_dict, ignored): the mapping of parameter names to tensors, and
        the other top-level entries of a wrapped checkpoint (e.g. "epoch",
        "optimizer"), which hold no model weights.

    Raises:
        ValueError: no state dict can be found.
    """
    if not isinstance(checkpoint, collections.abc.Mapping):
        raise ValueError(
            f"the checkpoint holds a {type(checkpoint).__name__}, not a state dict: save "
            "model.state_dict() (or a dict with a 'state_dict' entry).")
    wrapped = checkpoint.get(STATE_DICT_ENTRY)
    if isinstance(wrapped, collections.abc.Mapping):
        return wrapped, sorted(str(k) for k in checkpoint if k != STATE_DICT_ENTRY)
    if checkpoint and any(is_tensor(v) for v in checkpoint.values()):
        return checkpoint, []
    entries = {str(k): type(v).__name__ for k, v in checkpoint.items()}
    raise ValueError(
        f"the checkpoint has no tensors and no {STATE_DICT_ENTRY!r} entry; its top-level "
        f"entries are {entries}. Save model.state_dict(), or a dict with the state dict under "
        f"{STATE_DICT_ENTRY!r}.")


def strip_module_prefix(state_dict):
    """Removes the `module.` prefix DataParallel adds to every key.

    Raises:
        ValueError: a key exists both with and without the prefix.
    """
    stripped = {}
    for key, value in state_dict.items():
        name = key[len(MODULE_PREFIX):] if key.startswith(MODULE_PREFIX) else key
        if name in stripped:
            raise ValueError(
                f"state dict key {name!r} appears both with and without the {MODULE_PREFIX!r} "
                "prefix; it mixes two models.")
        stripped[name] = value
    return stripped
