"""`apply_svf`: put SVF layers into any functional or Sequential Keras model."""

import re

import keras

from svf_tf.layers.parallel_svd import prefetched_svds
from svf_tf.layers.svf_conv2d import SVFConv2D
from svf_tf.layers.svf_dense import SVFDense
from svf_tf.layers.svf_factorization import DEFAULTS, check_svf_options
from svf_tf.surgery.layer_paths import is_graph_model, iter_layers

_SVF_FROM = {keras.layers.Conv2D: SVFConv2D.from_conv, keras.layers.Dense: SVFDense.from_dense}


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
            "strings, a callable(layer) -> bool, or None for every Conv2D/Dense layer.")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(f"filters: {pattern!r} is not a valid regex ({error}).") from None
    return lambda layer, path: any(p.search(layer.name) or p.search(path) for p in compiled)


def _replaceable(layer):
    # Exact types only: a user's Conv2D subclass may compute something else.
    return type(layer) in _SVF_FROM and layer.built


def apply_svf(model, filters=None, **layer_options):
    """Returns a model whose selected Conv2D/Dense layers are SVF layers.

    Each selected layer is replaced by `SVFConv2D.from_conv` /
    `SVFDense.from_dense` seeded from its own weights, so the new model
    computes what the old one did until the singular values train. Every
    other layer (BatchNorm included) is the same instance as in `model`, with
    its weights and `trainable` flag: the two models share them. Nested
    functional/Sequential models (a backbone inside a bigger model) are
    rebuilt the same way.

    Args:
        model: a functional or Sequential `keras.Model` (built).
        filters: which layers to decompose: None (every Conv2D and Dense),
            a regex on layer names or paths ("outer/inner/name"), a list of
            regexes, or a callable(layer) -> bool.
        **layer_options: `trainable_factors`, `parametrization`,
            `rank_multiple`, `compute` for the new layers (see `SVFConv2D`).

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: if `filters` matches no Conv2D/Dense layer, an option is
            unknown, or the model is subclassed (clone_model cannot rebuild
            it; use `SVFConv2D.from_conv` on its layers directly).

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
    if not is_graph_model(model):
        raise ValueError(
            f"apply_svf needs a functional or Sequential keras.Model; got "
            f"{type(model).__name__} '{getattr(model, 'name', model)}'. For a subclassed "
            "model, replace its layers with SVFConv2D.from_conv / SVFDense.from_dense.")
    matches = make_layer_filter(filters)
    candidates = [(path, layer) for path, layer in iter_layers(model, graph_models_only=True)
                  if _replaceable(layer)]
    targets = {id(layer) for path, layer in candidates if matches(layer, path)}
    if not candidates:
        hidden = [path for path, layer in iter_layers(model) if type(layer) in _SVF_FROM]
        if hidden:
            raise ValueError(
                f"apply_svf: the Conv2D/Dense layers of '{model.name}' (e.g. '{hidden[0]}') sit "
                "inside subclassed layers, which clone_model cannot rebuild; replace them there "
                "with SVFConv2D.from_conv / SVFDense.from_dense.")
    if not targets:
        names = ", ".join(path for path, _ in candidates[:5]) or "none"
        raise ValueError(
            f"apply_svf: filters={filters!r} matched none of the model's {len(candidates)} "
            f"Conv2D/Dense layers (e.g. {names}). Check the regex against layer names.")

    def clone_function(layer):
        if id(layer) in targets:
            return _SVF_FROM[type(layer)](layer, **layer_options)
        return layer

    # Every kernel is known now: decompose them concurrently, then rebuild.
    kernels = [keras.ops.convert_to_numpy(layer.kernel) for _, layer in candidates
               if id(layer) in targets]
    with prefetched_svds([k.reshape(-1, k.shape[-1]) for k in kernels]):
        return keras.models.clone_model(model, clone_function=clone_function, recursive=True)
