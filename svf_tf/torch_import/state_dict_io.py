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

import _compat_pickle
import collections.abc
import importlib
import os
import pickle
import pickletools
import re
import warnings

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
        ValueError: the file asks the unpickler to import and call something
            other than tensors and plain containers (refused: nothing of it
            runs), or it is not a readable PyTorch file (truncated, not a
            checkpoint).
    """
    torch = import_torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r}: no such file.")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch reports both a refused object and a corrupt file this way.
        refusal = refusal_reason(str(error), _looks_pickled(path))
        if refusal:
            raise ValueError(
                f"checkpoint {path!r} was refused {refusal}; nothing ran (it was read with "
                f"torch.load(weights_only=True)). {RESAVE_ADVICE}") from None
        raise _unreadable(path, error) from None
    except Exception as error:
        # Corrupt bytes make the (weights-only) unpickler fail in many ways:
        # EOFError, IndexError, KeyError, RuntimeError (zip), struct.error, ...
        raise _unreadable(path, error) from None


# torch's weights-only unpickler (torch/_weights_only_unpickler.py) words a refused
# import in two ways: "Unsupported global: GLOBAL subprocess.run was not an allowed
# global by default" and, for os/posix/sys/..., "Trying to load unsupported GLOBAL
# posix.system whose module posix is blocked".
_REFUSED_GLOBAL = re.compile(r"unsupported (?:global: )?GLOBAL ([\w.]+)", re.IGNORECASE)
# A pickle instruction it does not run at all: "Unsupported operand 149".
_UNSUPPORTED_OPERAND = re.compile(r"Unsupported operand (\d+)")
# Where Python's own modules live that pickle names differently: protocol 2 (torch.save's
# default) stores subprocess as "commands" and builtins as "__builtin__"; os.system is
# posix.system (nt.system on Windows).
_MODULE_ALIASES = {**_compat_pickle.IMPORT_MAPPING, "posix": "os", "nt": "os"}
RESAVE_ADVICE = ("If you trust the file, re-save its state dict with PyTorch: "
                 "torch.save(torch.load(path, weights_only=False)['state_dict'], 'clean.pth').")


def callable_name(global_name: str) -> str:
    """The Python name of a pickled global as torch reports it: "posix.system" -> "os.system"."""
    module, _, name = global_name.rpartition(".")
    if not module:  # torch strips "builtins." (GLOBAL exec)
        return f"builtins.{name}"
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_MODULE_ALIASES.get(module, module)}.{name}"


def _looks_pickled(path) -> bool:
    """Whether a file starts as torch.save writes: a zip archive, or a protocol 2-5 pickle."""
    with open(path, "rb") as file:
        head = file.read(2)
    return head == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def refusal_reason(message: str, pickled: bool = True) -> str | None:
    """Why torch's weights-only unpickler refused a file, or None for a corrupt one.

    Args:
        message: the text of torch's `UnpicklingError`.
        pickled: whether the file starts as a torch or pickle file; an
            unsupported instruction in a file that does not is read as
            damage, not as a refusal.

    Returns:
        The end of the sentence "checkpoint ... was refused ...": because it
        tried to run code (naming the callable), or because it uses a pickle
        instruction that weights-only loading does not run; None when the
        error is not a refusal (a truncated or foreign file).
    """
    found = _REFUSED_GLOBAL.search(message)
    if found:
        return (f"because it tried to run code: unpickling it would import and call "
                f"{callable_name(found[1])}")
    found = _UNSUPPORTED_OPERAND.search(message)
    opcode = found and pickled and pickletools.code2op.get(chr(int(found[1])))
    if opcode:  # a real pickle instruction, not stray bytes of a damaged file
        return (f"because it uses the pickle instruction {opcode.name} (protocol "
                f"{opcode.proto}+; torch.save writes protocol 2), which weights-only loading "
                "does not run")
    return None


def _unreadable(path, error):
    text = " ".join(str(error).split())
    detail = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    reason = detail[1] if detail else text.split(". ")[0][:160] or type(error).__name__
    return ValueError(
        f"checkpoint {path!r} is not a readable PyTorch file ({reason.strip()}); a truncated "
        "download or an HTML error page?")


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
