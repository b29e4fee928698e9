"""`apply_svf`: SVF layers into a Keras model (graph layers by cloning, nested ones in place)."""

import contextlib
import math
import re

import keras
import numpy as np

from svf_tf.layers.parallel_svd import prefetched_svds
from svf_tf.layers.svf_conv2d import SVFConv2D
from svf_tf.layers.svf_dense import SVFDense
from svf_tf.layers.svf_einsum_dense import SVFEinsumDense, einsum_folding
from svf_tf.layers.svf_factorization import DEFAULTS, check_svf_options
from svf_tf.surgery.layer_paths import walk_layers
from svf_tf.surgery.sublayers import (
    check_graph_reachable,
    check_replaceable,
    creation_scope,
    replace_sublayer,
)

_SVF_FROM = {keras.layers.Conv2D: SVFConv2D.from_conv, keras.layers.Dense: SVFDense.from_dense,
             keras.layers.EinsumDense: SVFEinsumDense.from_einsum_dense}


def make_layer_filter(filters):
    """Turns Keras' `filters` convention into a predicate `(layer, path) -> bool`.

    Args:
        filters: None (every layer), a regex searched in the layer's name and
            in its path, a list of such regexes (any may match), or a
            callable taking the layer and returning a bool. This is the
            convention of `keras.Model.quantize(filters=...)`, extended to
            paths so that nested models can be targeted.
    """
    if filters is None:
        return lambda layer, path: True
    if callable(filters):
        return lambda layer, path: bool(filters(layer))
    patterns = [filters] if isinstance(filters, str) else filters
    if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, str) for p in patterns):
        raise ValueError(
            f"filters={filters!r} is not accepted: use a regex string, a list of regex "
            "strings, a callable(layer) -> bool, or None for every Conv2D/Dense/EinsumDense layer.")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(f"filters: {pattern!r} is not a valid regex ({error}).") from None
    return lambda layer, path: any(p.search(layer.name) or p.search(path) for p in compiled)


def _foldable(layer):
    if type(layer) is not keras.layers.EinsumDense:
        return True
    try:
        einsum_folding(layer.equation)
    except ValueError:
        return False
    return True


def _replaceable(layer):
    # Exact types only: a user's Conv2D subclass may compute something else.
    return type(layer) in _SVF_FROM and layer.built and _foldable(layer)


def _folded_kernel(layer):
    """The layer's kernel as the (fan_in, units) matrix its SVF layer decomposes."""
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    if type(layer) is keras.layers.EinsumDense:
        input_axes, output_axes, _, _ = einsum_folding(layer.equation)
        kernel = np.transpose(kernel, input_axes + output_axes)
        return kernel.reshape(math.prod(kernel.shape[:len(input_axes)]), -1)
    return kernel.reshape(-1, kernel.shape[-1])


def apply_svf(model, filters=None, **layer_options):
    """Returns a model whose selected Conv2D/Dense/EinsumDense layers are SVF layers.

    Each selected layer is replaced by `SVFConv2D.from_conv`,
    `SVFDense.from_dense` or `SVFEinsumDense.from_einsum_dense` seeded from
    its own weights, so the model computes what it did until the singular
    values train. Where the layer sits decides how it is replaced:

    - in a functional/Sequential graph (nested graphs included): the graph is
      rebuilt with `clone_model` and a new model is returned; every other
      layer (BatchNorm included) is the same instance as in `model`, with its
      weights and `trainable` flag: the two models share them;
    - inside a subclassed layer or model (KerasHub's ViT encoder blocks,
      Keras' `MultiHeadAttention`, a user's `keras.Model` subclass): in
      place, in the attribute of the parent that holds it
      (`svf_tf.surgery.sublayers`), as Keras' `enable_lora` does. That parent
      is shared with `model`, so `model` computes with the SVF layer too.
      When every selected layer sits in subclassed layers, `model` itself is
      returned (keeping its class, e.g. `ViTBackbone`).

    Layer paths ("outer/inner/name", the `filters` and adapter-file keys)
    are the same either way. EinsumDense layers whose equation has a kernel
    axis in both input and output (no single matrix, `einsum_folding`) are
    left out.

    Args:
        model: a built `keras.Model` (functional, Sequential or subclassed).
        filters: which layers to decompose: None (every Conv2D, Dense and
            EinsumDense), a regex on layer names or paths, a list of regexes,
            or a callable(layer) -> bool.
        **layer_options: `trainable_factors`, `parametrization`,
            `rank_multiple`, `compute` for the new layers (see `SVFConv2D`).

    Returns:
        A new functional `keras.Model`, or `model` itself changed in place
        (see above).

    Raises:
        ValueError: if `filters` matches no Conv2D/Dense/EinsumDense layer,
            an option is unknown, or a selected layer cannot be reached (a
            functional model inside a subclassed layer, a sublayer no
            attribute holds). Every check runs before anything is replaced.

    Example:
    ```python
    backbone = keras.applications.ResNet50(weights=None, include_top=False)
    svf_backbone = svf_tf.apply_svf(backbone, filters=r"conv[345]_block")
    ```
    """
    unknown = set(layer_options) - {"trainable_factors", "parametrization", "rank_multiple",
                                    "compute"}
    if unknown:
        raise ValueError(
            f"apply_svf: unknown option(s) {sorted(unknown)}; accepted: trainable_factors, "
            "parametrization, rank_multiple, compute.")
    check_svf_options(**{**DEFAULTS, **layer_options})
    matches = make_layer_filter(filters)
    candidates = [entry for entry in walk_layers(model) if _replaceable(entry[1])]
    if not candidates:
        raise ValueError(
            f"apply_svf: model '{getattr(model, 'name', model)}' has no built Conv2D, Dense or "
            "EinsumDense layer (exact types) to decompose.")
    targets = [entry for entry in candidates if matches(entry[1], entry[0])]
    if not targets:
        names = ", ".join(path for path, *_ in candidates[:5])
        raise ValueError(
            f"apply_svf: filters={filters!r} matched none of the model's {len(candidates)} "
            f"Conv2D/Dense/EinsumDense layers (e.g. {names}). Check the regex against layer "
            "names.")
    for path, layer, parent, in_graph in targets:
        check_graph_reachable(in_graph, path, parent, "apply_svf")
        if not in_graph:
            check_replaceable(parent, layer, path, "apply_svf")

    # Every kernel is known now: decompose them concurrently, then build the layers.
    svf_of = {}
    with prefetched_svds([_folded_kernel(layer) for _, layer, _, _ in targets]):
        for _, layer, _, in_graph in targets:
            with contextlib.nullcontext() if in_graph else creation_scope(layer):
                svf_of[id(layer)] = _SVF_FROM[type(layer)](layer, **layer_options)
    for _, layer, parent, in_graph in targets:
        if not in_graph:
            replace_sublayer(parent, layer, svf_of[id(layer)])
    if not any(in_graph for *_, in_graph in targets):
        return model
    return keras.models.clone_model(
        model, clone_function=lambda layer: svf_of.get(id(layer), layer), recursive=True)
