"""`merge_svf`: fold SVF layers back into plain Conv2D/Dense/EinsumDense for export."""

import contextlib

import keras
from keras import ops

from svf_tf.layers.svf_conv2d import SVFConv2D
from svf_tf.layers.svf_einsum_dense import SVFEinsumDense
from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.surgery.layer_paths import walk_layers
from svf_tf.surgery.sublayers import (
    check_graph_reachable,
    check_replaceable,
    creation_scope,
    replace_sublayer,
)

_SVF_KEYS = ("trainable_factors", "parametrization", "rank_multiple", "compute", "adapters",
             "active_adapter", "mixing_adapters")


def merged_layer(layer):
    """A plain `Conv2D`/`Dense`/`EinsumDense` holding W = V diag(S) U^T of an SVF layer.

    With named adapters, the active one is merged (the base when disabled,
    the current mix while learning mixing weights).
    """
    config = {k: v for k, v in layer.get_config().items() if k not in _SVF_KEYS}
    if isinstance(layer, SVFConv2D):
        plain = keras.layers.Conv2D.from_config(config)
        channels = layer._svf_kernel_shape[-2] * layer.groups
        plain.build((None, None, None, channels) if layer.data_format == "channels_last"
                    else (None, channels, None, None))
    elif isinstance(layer, SVFEinsumDense):
        plain = keras.layers.EinsumDense.from_config(config)
        plain.build_from_config(layer.get_build_config())
    else:
        plain = keras.layers.Dense.from_config(config)
        plain.build((None, layer._svf_kernel_shape[0]))
    folded = layer.svf_folded_kernel()
    plain.kernel.assign(ops.cast(layer._svf_unfold(folded), plain.kernel.dtype))
    if layer.use_bias:
        plain.bias.assign(layer.bias)
    plain.trainable = layer.trainable
    return plain


def merge_svf(model):
    """Returns a model in which every SVF layer is a plain Conv2D/Dense/EinsumDense again.

    The merged kernel is the composed V diag(S) U^T, so outputs equal the SVF
    model's (to float rounding) and inference costs what the original model
    cost; the result has no custom layer and exports as a SavedModel that
    needs no svf_tf to load. As in `apply_svf`:

    - SVF layers of functional/Sequential graphs are replaced by cloning:
      a new model is returned and other layers are shared with `model`;
    - SVF layers inside subclassed layers or models (e.g. a ViT's encoder
      blocks) are replaced in place, in the attribute of their parent: `model`
      itself is merged there. When every SVF layer sits in subclassed layers,
      `model` itself is returned, merged. Save an adapter file first
      (`save_svf_weights`) to keep the SVF factors; `unmerge_svf` recovers
      them from the merged model and that file.

    A model without SVF layers is returned as is.

    Args:
        model: a `keras.Model` (functional, Sequential or subclassed).
    """
    entries = [entry for entry in walk_layers(model) if isinstance(entry[1], SVFFactorization)]
    for path, layer, parent, in_graph in entries:  # every check first
        if not in_graph:
            check_graph_reachable(in_graph, path, parent, "merge_svf")
            check_replaceable(parent, layer, path, "merge_svf")
    merged = {}
    for _, layer, _, in_graph in entries:
        with contextlib.nullcontext() if in_graph else creation_scope(layer):
            merged[id(layer)] = merged_layer(layer)
    for _, layer, parent, in_graph in entries:
        if not in_graph:
            replace_sublayer(parent, layer, merged[id(layer)])
    if not any(in_graph for *_, in_graph in entries):
        return model
    return keras.models.clone_model(
        model, clone_function=lambda layer: merged.get(id(layer), layer), recursive=True)
