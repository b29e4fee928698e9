"""Adapter files: only the trained SVF factors of a model, keyed by layer path.

An adapter is a NumPy `.npz` archive (no pickle) holding, for each SVF layer,
its trainable factor arrays, plus a JSON header with the layer paths, their
options and a fingerprint of each layer's frozen base kernel. For a ResNet50
with S trained in stages 3-5 it is about 50 kB, against ~100 MB for the
model. Loading checks that the target model has the same SVF layers over the
same base weights, and names the first layer that differs.
"""

import io
import json
import os

import numpy as np
from keras import ops

from svf_tf.atomic_files import write_file_atomically
from svf_tf.layers.svf_factorization import SVFFactorization, fingerprints_match
from svf_tf.surgery.layer_paths import iter_layers

FORMAT = "svf_tf.adapter.v1"


def _svf_layers(model):
    layers = [(path, layer) for path, layer in iter_layers(model)
              if isinstance(layer, SVFFactorization)]
    if not layers:
        raise ValueError(
            f"Model '{model.name}' has no SVF layers; apply svf_tf.apply_svf first.")
    return layers


def _describe(path, layer):
    return {
        "path": path,
        "class": type(layer).__name__,
        "kernel_shape": list(layer._svf_kernel_shape),
        "rank": int(layer.svf_rank),
        "parametrization": layer.parametrization,
        "fingerprint": [float(x) for x in ops.convert_to_numpy(layer.svf_base_fingerprint)],
        "variables": [v.name for v in layer.svf_trainable_variables],
    }


def save_svf_weights(model, path):
    """Writes the trainable SVF factors of `model` to an adapter file.

    The file is written whole or not at all (`svf_tf.atomic_files`): a full
    disk or Ctrl-C leaves the previous file, or none.

    Args:
        model: a Keras model (or layer) containing SVF layers, at any depth.
        path: destination, ending in ".npz" (".svf.npz" is the convention).

    Returns:
        The path written.

    Raises:
        OSError: the file cannot be written (naming it).
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"Adapter path {path!r} must end in '.npz' (e.g. 'model.svf.npz').")
    header = {"format": FORMAT, "layers": []}
    arrays = {}
    for i, (layer_path, layer) in enumerate(_svf_layers(model)):
        header["layers"].append(_describe(layer_path, layer))
        for variable in layer.svf_trainable_variables:
            arrays[f"{i}__{variable.name}"] = ops.convert_to_numpy(variable)
    archive = io.BytesIO()  # adapters are small (~50 kB for a ResNet-50)
    np.savez(archive, header=np.array(json.dumps(header)), **arrays)
    write_file_atomically(path, archive.getvalue())
    return path


def _mismatch(saved, layer_path, layer):
    """Why the saved layer entry does not fit `layer`, or None."""
    current = _describe(layer_path, layer)
    for key in ("class", "kernel_shape", "rank", "parametrization"):
        if saved[key] != current[key]:
            return f"{key} is {current[key]!r} in the model but {saved[key]!r} in the file"
    try:
        same_base = fingerprints_match(saved["fingerprint"], current["fingerprint"])
    except (ValueError, TypeError):  # not a list of FINGERPRINT_SIZE numbers
        return "the adapter's fingerprint of the base weights is damaged"
    if not same_base:
        return "its frozen base weights differ from those the adapter was trained on"
    return None


# What every layer entry of the header holds (`_describe`).
_ENTRY_KEYS = ("path", "class", "kernel_shape", "rank", "parametrization", "fingerprint",
               "variables")


def _first_line(error):
    text = " ".join(str(error).split())
    return text[:120] or type(error).__name__


def _read_adapter(path):
    """(header, {array name: array}) of an adapter file, every array read now.

    Reading the whole archive up front (adapters are small) makes a truncated
    or corrupt member fail here, before anything is assigned.
    """
    try:
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):  # a lone .npy array
            raise ValueError(f"a {type(archive).__name__}, not an .npz archive")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:  # zipfile.BadZipFile, zlib.error, EOFError, OSError, ...
        raise ValueError(
            f"{path!r} is not an svf_tf adapter file: it cannot be read as .npz "
            f"({_first_line(error)}); a truncated copy? Write it again with "
            "save_svf_weights.") from None
    if "header" not in arrays:
        raise ValueError(
            f"{path!r} is not an svf_tf adapter file: it has no 'header' array (its arrays: "
            f"{sorted(arrays)[:3]}); write adapters with save_svf_weights.")
    try:
        header = json.loads(str(arrays.pop("header")))
    except ValueError as error:
        raise ValueError(
            f"{path!r} is not an svf_tf adapter file: its header is not JSON "
            f"({_first_line(error)}).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise ValueError(f"{path!r} has format {found!r}; this version reads {FORMAT!r}.")
    layers = header.get("layers")
    if not isinstance(layers, list) or not all(
            isinstance(entry, dict) and all(key in entry for key in _ENTRY_KEYS)
            for entry in layers):
        raise ValueError(
            f"Adapter {path!r} has a damaged header: 'layers' must list entries with "
            f"{', '.join(_ENTRY_KEYS)}; write it again with save_svf_weights.")
    return header, arrays


def _checked_value(path, arrays, key, layer_path, variable):
    """The array `key` for `variable`, after checking it exists, fits and is finite."""
    where = f"Adapter {path!r}, layer '{layer_path}'"
    if key not in arrays:
        raise ValueError(
            f"{where}: the array {key!r} ({variable.name}) is missing from the file; an "
            "incomplete file? Write it again with save_svf_weights.")
    value = arrays[key]
    if tuple(value.shape) != tuple(variable.shape):
        raise ValueError(
            f"{where}: the array {key!r} has shape {tuple(value.shape)}, but "
            f"{variable.name} has shape {tuple(variable.shape)}; the file was edited or "
            "damaged.")
    if not np.issubdtype(value.dtype, np.floating):
        raise ValueError(
            f"{where}: the array {key!r} has dtype {value.dtype}, not float; the file was "
            "edited or damaged.")
    bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
    if bad:
        raise ValueError(
            f"{where}: the array {key!r} holds {bad} NaN or inf value(s); the training that "
            "wrote it diverged. Use an earlier adapter or checkpoint.")
    return value


def load_svf_weights(model, path):
    """Loads an adapter written by `save_svf_weights` into `model`.

    The model must have the same SVF layers (same paths, kernel shapes, rank
    and parametrization) over the same pretrained base weights, and the file
    must be whole: every array present, of the right shape, finite. Every
    check runs before the first assignment, so when one fails a ValueError
    names the file and the first problem (in the model's layer order) and the
    model is left exactly as it was.

    Args:
        model: the target model.
        path: an adapter `.npz` file.

    Returns:
        The number of arrays loaded.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: an unreadable or truncated file, a damaged header, a
            missing, misshapen or non-finite array, or an adapter for other
            SVF layers or base weights.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Adapter file {path!r} does not exist.")
    header, arrays = _read_adapter(path)
    entries = {entry["path"]: (i, entry) for i, entry in enumerate(header["layers"])}
    assignments = []
    # One pass in the model's layer order, so the error names the first layer
    # that differs, whatever the reason.
    for layer_path, layer in _svf_layers(model):
        if layer_path not in entries:
            raise ValueError(
                f"Adapter {path!r} does not fit the model: its SVF layer '{layer_path}' is "
                "not in the adapter (the adapter was saved from a different layer set).")
        i, entry = entries.pop(layer_path)
        reason = _mismatch(entry, layer_path, layer)
        if reason:
            raise ValueError(
                f"Adapter {path!r} does not fit the model at layer '{layer_path}': "
                f"{reason}.")
        variables = {v.name: v for v in layer._svf_variables()}
        for name in entry["variables"]:
            if name not in variables:
                raise ValueError(
                    f"Adapter {path!r}, layer '{layer_path}': it stores {name!r}, which this "
                    f"layer does not have (it has {sorted(variables)}).")
            value = _checked_value(path, arrays, f"{i}__{name}", layer_path, variables[name])
            assignments.append((variables[name], value))
    if entries:
        raise ValueError(
            f"Adapter {path!r} does not fit the model: layer '{next(iter(entries))}' is not "
            "an SVF layer of the model.")
    for variable, value in assignments:
        variable.assign(value)
    return len(assignments)
