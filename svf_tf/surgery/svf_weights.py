"""Adapter files: only the trained SVF factors of a model, keyed by layer path.

An adapter is a NumPy `.npz` archive (no pickle) holding, for each SVF layer,
its trainable factor arrays, plus a JSON header with the layer paths, their
options and a fingerprint of each layer's frozen base kernel. For a ResNet50
with S trained in stages 3-5 it is about 50 kB, against ~100 MB for the
model. Loading checks that the target model has the same SVF layers over the
same base weights, and names the first layer that differs.
"""

import json
import os

import numpy as np
from keras import ops

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

    Args:
        model: a Keras model (or layer) containing SVF layers, at any depth.
        path: destination, ending in ".npz" (".svf.npz" is the convention).

    Returns:
        The path written.
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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path, header=np.array(json.dumps(header)), **arrays)
    return path


def _mismatch(saved, layer_path, layer):
    """Why the saved layer entry does not fit `layer`, or None."""
    current = _describe(layer_path, layer)
    for key in ("class", "kernel_shape", "rank", "parametrization"):
        if saved[key] != current[key]:
            return f"{key} is {current[key]!r} in the model but {saved[key]!r} in the file"
    if not fingerprints_match(saved["fingerprint"], current["fingerprint"]):
        return "its frozen base weights differ from those the adapter was trained on"
    return None


def load_svf_weights(model, path):
    """Loads an adapter written by `save_svf_weights` into `model`.

    The model must have the same SVF layers (same paths, kernel shapes, rank
    and parametrization) over the same pretrained base weights; otherwise a
    ValueError names the first layer that differs, and nothing is assigned.

    Args:
        model: the target model.
        path: an adapter `.npz` file.

    Returns:
        The number of arrays loaded.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Adapter file {path!r} does not exist.")
    try:
        archive = np.load(path, allow_pickle=False)
        header = json.loads(str(archive["header"]))
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path!r} is not an svf_tf adapter file ({error}).") from None
    if header.get("format") != FORMAT:
        raise ValueError(
            f"{path!r} has format {header.get('format')!r}; this version reads {FORMAT!r}.")
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
            assignments.append((variables[name], archive[f"{i}__{name}"]))
    if entries:
        raise ValueError(
            f"Adapter {path!r} does not fit the model: layer '{next(iter(entries))}' is not "
            "an SVF layer of the model.")
    for variable, value in assignments:
        variable.assign(value)
    return len(assignments)
