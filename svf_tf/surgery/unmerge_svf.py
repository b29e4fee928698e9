"""`unmerge_svf`: a merged plain model plus its adapter file give back the SVF model.

`merge_svf` folds each SVF layer into a plain kernel W' = V diag(S') U^T.
W' has the same singular vectors as the base kernel (only the singular
values changed), so its SVD returns U and V; the adapter file says which
singular value belongs to which column (the trained S' of each layer, and S0
for the exp parametrization). Unmerging decomposes W', orders and signs the
singular vectors after the file's S', and checks that model and file belong
together:

- the singular values of W' must be the file's |S'| (the merged kernel of
  another adapter or base has other ones);
- the bias must have the norm the file's base fingerprint records;
- with the exp parametrization and the full rank, the rebuilt base kernel
  V diag(S0) U^T must have the file's base fingerprint.

The result computes what the SVF model that was merged computed (to float
rounding of one SVD), trains the same factors, and loads the same adapter.
"""

import re

import keras
import numpy as np
from keras import ops

from svf_tf.layers.svf_factorization import fingerprint, fingerprints_match
from svf_tf.surgery.adapter_format import read_adapter
from svf_tf.surgery.adapters import svf_layers
from svf_tf.surgery.apply_svf import apply_svf
from svf_tf.surgery.layer_paths import iter_layers

_PLAIN = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.EinsumDense)
_PLAIN_NAMES = "Conv2D/Dense/EinsumDense"


def _options(path, entries):
    """The apply_svf options of the file (one set for every layer)."""
    options = set()
    for entry in entries:
        trained = set(entry["variables"])
        if trained not in ({"svf_s"}, {"svf_s_prime"}):
            raise ValueError(
                f"unmerge_svf: adapter {path!r} trains {sorted(trained)} at layer "
                f"'{entry['path']}'; unmerging needs adapters that train S alone (U and V "
                "are then those of the merged kernel).")
        if entry["parametrization"] == "exp" and "svf_s0" not in entry.get("frozen", {}):
            raise ValueError(
                f"unmerge_svf: adapter {path!r} has no S0 for layer '{entry['path']}' (written "
                "before format version 2); save the adapter again with save_svf_weights.")
        options.add((entry["parametrization"], entry.get("rank_multiple", 1),
                     entry.get("compute")))
    if len(options) != 1:
        raise ValueError(
            f"unmerge_svf: adapter {path!r} mixes SVF options across layers {sorted(options)}; "
            "unmerge needs one set.")
    parametrization, rank_multiple, compute = options.pop()
    return {"trainable_factors": ("S",), "parametrization": parametrization,
            "rank_multiple": rank_multiple, "compute": compute}


def _effective_s(entry, arrays, i):
    if entry["parametrization"] == "direct":
        return arrays[f"{i}__svf_s"].astype(np.float64), None
    s0 = arrays[f"{i}__svf_s0"].astype(np.float64)
    return s0 * np.exp(arrays[f"{i}__svf_s_prime"].astype(np.float64)), s0


def _restore_layer(path, entry, arrays, i, layer):
    """Orders the SVD of the merged kernel after the file's S' and assigns the factors."""
    where = f"unmerge_svf: adapter {path!r} and the merged model at layer '{entry['path']}'"
    target, s0 = _effective_s(entry, arrays, i)
    u = ops.convert_to_numpy(layer.svf_u).astype(np.float64)
    v = ops.convert_to_numpy(layer.svf_v).astype(np.float64)
    found = ops.convert_to_numpy(
        layer.svf_s if layer.parametrization == "direct" else layer.svf_s0).astype(np.float64)
    order = np.argsort(-np.abs(target), kind="stable")  # SVD component j is file index order[j]
    if target.shape != found.shape or not np.allclose(
            found, np.abs(target[order]), rtol=1e-4, atol=1e-5 * max(found.max(), 1e-12)):
        raise ValueError(
            f"{where}: the merged kernel's singular values are not the adapter's (largest "
            f"{found[:2].round(4).tolist()} vs {np.abs(target[order][:2]).round(4).tolist()}); "
            "they do not belong together: use the adapter the model was merged with.")
    new_u, new_v = np.empty_like(u), np.empty_like(v)
    new_u[:, order] = u
    new_v[:, order] = v * np.where(target[order] < 0, -1.0, 1.0)
    layer.svf_u.assign(new_u.astype(np.float32))
    layer.svf_v.assign(new_v.astype(np.float32))
    if s0 is None:
        layer.svf_s.assign(target.astype(np.float32))
    else:
        layer.svf_s0.assign(s0.astype(np.float32))
        layer.svf_s_prime.assign(arrays[f"{i}__svf_s_prime"])
    saved = np.asarray(entry["fingerprint"], np.float64)
    bias = ops.convert_to_numpy(layer.bias).astype(np.float64) if layer.use_bias else None
    bias_norm = 0.0 if bias is None else float(np.linalg.norm(bias))
    if abs(bias_norm - saved[-1]) > 1e-4 * max(bias_norm, abs(saved[-1]), 1e-12):
        raise ValueError(
            f"{where}: the bias differs from the base's (norm {bias_norm:.6g} vs "
            f"{saved[-1]:.6g}); they do not belong together.")
    full_rank = layer.svf_rank == min(v.shape[0], u.shape[0])
    if s0 is not None and full_rank and not fingerprints_match(
            fingerprint((new_v * s0) @ new_u.T, bias), saved):
        raise ValueError(
            f"{where}: the rebuilt base kernel does not have the adapter's base fingerprint; "
            "they do not belong together: use the adapter the model was merged with.")
    layer.svf_base_fingerprint.assign(saved.astype(np.float32))


def unmerge_svf(merged_model, adapter_path):
    """The SVF model that `merge_svf` turned into `merged_model`, from its adapter file.

    Args:
        merged_model: a model whose layers at the adapter's paths are plain
            Conv2D/Dense/EinsumDense (e.g. from `merge_svf`, or a
            SavedModel's Keras source). As with `apply_svf`, layers inside
            subclassed layers are replaced in place (`merged_model` itself
            changes there).
        adapter_path: the adapter file of the merged SVF model (trained S
            only; exp-parametrization files of format version 2 or later).

    Returns:
        A new model with SVF layers at the adapter's paths; every other
        layer is shared with `merged_model`, as with `apply_svf`.

    Raises:
        ValueError: a layer of the adapter is missing or not a plain
            Conv2D/Dense/EinsumDense, or model and adapter do not belong together
            (naming the layer, the file and the fix).
    """
    header, arrays = read_adapter(adapter_path)
    entries = header["layers"]
    options = _options(adapter_path, entries)
    plain = dict(iter_layers(merged_model))
    for entry in entries:
        layer = plain.get(entry["path"])
        if type(layer) not in _PLAIN:
            raise ValueError(
                f"unmerge_svf: adapter {adapter_path!r} names layer '{entry['path']}', which "
                f"is {'missing from' if layer is None else 'not a plain ' + _PLAIN_NAMES + ' of'} "
                f"'{merged_model.name}'; unmerge the model merge_svf made from this adapter's "
                "model.")
        if list(ops.shape(layer.kernel)) != list(entry["kernel_shape"]):
            raise ValueError(
                f"unmerge_svf: layer '{entry['path']}' has kernel shape "
                f"{tuple(ops.shape(layer.kernel))} but adapter {adapter_path!r} has "
                f"{tuple(entry['kernel_shape'])}; they do not belong together.")
    paths = [f"^{re.escape(entry['path'])}$" for entry in entries]
    model = apply_svf(merged_model, filters=paths, **options)
    restored = dict(svf_layers(model))
    if set(restored) != {entry["path"] for entry in entries}:
        raise ValueError(
            f"unmerge_svf: the layer names of '{merged_model.name}' are ambiguous for the "
            f"paths of adapter {adapter_path!r}; rename the layers so that names are unique.")
    for i, entry in enumerate(entries):
        _restore_layer(adapter_path, entry, arrays, i, restored[entry["path"]])
    return model
