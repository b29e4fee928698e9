"""Adapter files: only the trained SVF factors of a model, keyed by layer path.

One file per adapter, a `.npz` archive whose format (a readable JSON header
with layer paths, shapes, SVF options, base fingerprints and creation
settings, then one array per trained factor) is described and versioned in
`svf_tf.surgery.adapter_format`; files of every earlier version still load.
For a ResNet50 with S trained in stages 3-5 it is about 50 kB, against
~100 MB for the model. Loading checks that the target model has the same SVF
layers over the same base weights, and names the first layer that differs.
"""

import os

import numpy as np
from keras import ops

from svf_tf.atomic_files import write_file_atomically
from svf_tf.layers.svf_factorization import fingerprints_match
from svf_tf.surgery.adapter_format import adapter_bytes, creation_record, read_adapter
from svf_tf.surgery.adapters import add_adapter, list_adapters, svf_layers


def _describe(path, layer):
    return {
        "path": path,
        "class": type(layer).__name__,
        "kernel_shape": list(layer._svf_kernel_shape),
        "rank": int(layer.svf_rank),
        "trainable_factors": list(layer.trainable_factors),
        "parametrization": layer.parametrization,
        "rank_multiple": int(layer.rank_multiple),
        "compute": layer.compute,
        "fingerprint": [float(x) for x in ops.convert_to_numpy(layer.svf_base_fingerprint)],
        "variables": {v.name: list(v.shape) for v in layer._svf_adapted_variables()},
    }


def save_svf_weights(model, path, *, adapter=None, settings=None):
    """Writes the trainable SVF factors of `model` to an adapter file.

    The file is written whole or not at all (`svf_tf.atomic_files`): a full
    disk or Ctrl-C leaves the previous file, or none.

    Args:
        model: a Keras model (or layer) containing SVF layers, at any depth.
        path: destination, ending in ".npz" (".svf.npz" is the convention).
        adapter: the named adapter to write (`svf_tf.add_adapter`); None
            writes the factors the model computes with now.
        settings: optional JSON-serialisable dict kept in the header as the
            adapter's creation settings (e.g. dataset, fold, shot, run name).

    Returns:
        The path written.

    Raises:
        OSError: the file cannot be written (naming it).
        ValueError: a bad path, `settings` that is not JSON, or no SVF layer.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"Adapter path {path!r} must end in '.npz' (e.g. 'model.svf.npz').")
    layers = svf_layers(model)
    if adapter is not None and adapter not in list_adapters(model):
        raise ValueError(
            f"save_svf_weights({path!r}): model '{model.name}' has no adapter {adapter!r} (it "
            f"has {list_adapters(model)}).")
    header = {"adapter": adapter if adapter is not None else layers[0][1].active_adapter,
              "created_by": creation_record(), "settings": settings or {}, "layers": []}
    arrays = {}
    for i, (layer_path, layer) in enumerate(layers):
        header["layers"].append(_describe(layer_path, layer))
        values = (layer.adapter_values(adapter) if adapter is not None else
                  {v.name: ops.convert_to_numpy(v) for v in layer._svf_adapted_variables()})
        for name, value in values.items():
            arrays[f"{i}__{name}"] = value
        if layer.parametrization == "exp":
            # S0 (R floats), so that unmerge_svf can rebuild the base from a merged model.
            header["layers"][-1]["frozen"] = {"svf_s0": [int(layer.svf_rank)]}
            arrays[f"{i}__svf_s0"] = ops.convert_to_numpy(layer.svf_s0)
    try:
        data = adapter_bytes(header, arrays)
    except TypeError as error:
        raise ValueError(
            f"save_svf_weights({path!r}): settings must be JSON-serialisable ({error}); "
            "pass plain numbers, strings, lists and dicts.") from None
    write_file_atomically(path, data)
    return path


def _mismatch(saved, layer_path, layer):
    """Why the saved layer entry does not fit `layer` (reason and fix), or None."""
    current = _describe(layer_path, layer)
    for key in ("class", "kernel_shape", "rank", "parametrization"):
        if saved[key] != current[key]:
            return (f"{key} is {current[key]!r} in the model but {saved[key]!r} in the file; "
                    f"apply SVF with the options the adapter was trained with")
    try:
        same_base = fingerprints_match(saved["fingerprint"], current["fingerprint"])
    except (ValueError, TypeError):  # not a list of FINGERPRINT_SIZE numbers
        return "the adapter's fingerprint of the base weights is damaged"
    if not same_base:
        return ("its frozen base weights differ from those the adapter was trained on; load "
                "the pretrained weights it was trained on before apply_svf")
    missing = sorted(set(current["variables"]) - set(saved["variables"]))
    if missing:
        return (f"the model trains {missing}, which the file does not hold; apply SVF with "
                f"trainable_factors as in the file")
    return None


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


def load_svf_weights(model, path, *, adapter=None):
    """Loads an adapter written by `save_svf_weights` into `model`.

    The model must have the same SVF layers (same paths, kernel shapes, rank
    and parametrization) over the same pretrained base weights, and the file
    must be whole: every array present, of the right shape, finite. Every
    check runs before the first assignment, so when one fails a ValueError
    names the file and the first problem (in the model's layer order) and the
    model is left exactly as it was.

    Args:
        model: the target model.
        path: an adapter `.npz` file (any format version).
        adapter: load into this named adapter (added if the model lacks it;
            the model's active adapter is not changed). None loads into the
            factors the model computes with now (its active adapter).

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
    header, arrays = read_adapter(path)
    names = list_adapters(model)
    if adapter is None and names and svf_layers(model)[0][1].active_adapter is None:
        raise ValueError(
            f"load_svf_weights({path!r}): model '{model.name}' has adapters {names} but none "
            "is active; name one: load_svf_weights(model, path, adapter='name').")
    entries = {entry["path"]: (i, entry) for i, entry in enumerate(header["layers"])}
    assignments = []
    # One pass in the model's layer order, so the error names the first layer
    # that differs, whatever the reason.
    for layer_path, layer in svf_layers(model):
        if layer_path not in entries:
            raise ValueError(
                f"Adapter {path!r} does not fit the model: its SVF layer '{layer_path}' is "
                "not in the adapter (the adapter was saved from a different layer set); "
                "apply_svf with the filters it was trained with.")
        i, entry = entries.pop(layer_path)
        reason = _mismatch(entry, layer_path, layer)
        if reason:
            raise ValueError(
                f"Adapter {path!r} does not fit the model at layer '{layer_path}': "
                f"{reason}.")
        variables = {v.name: v for v in layer._svf_variables()}
        values = {}
        for name in entry["variables"]:
            if name not in variables:
                raise ValueError(
                    f"Adapter {path!r}, layer '{layer_path}': it stores {name!r}, which this "
                    f"layer does not have (it has {sorted(variables)}).")
            values[name] = _checked_value(path, arrays, f"{i}__{name}", layer_path,
                                          variables[name])
        assignments.append((layer, values))
    if entries:
        raise ValueError(
            f"Adapter {path!r} does not fit the model: layer '{next(iter(entries))}' is not "
            "an SVF layer of the model; apply_svf with the filters it was trained with.")
    if adapter is not None and adapter not in names:
        add_adapter(model, adapter)
    for layer, values in assignments:
        if adapter is not None:
            layer.set_adapter_values(adapter, values)
        else:
            for name, value in values.items():
                getattr(layer, name).assign(value)
    return sum(len(values) for _, values in assignments)
