"""`merge_svf`: fold SVF layers back into plain Conv2D/Dense for export."""

import keras
from keras import ops

from svf_tf.layers.svf_conv2d import SVFConv2D
from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.surgery.layer_paths import is_graph_model, iter_layers

_SVF_KEYS = ("trainable_factors", "parametrization", "rank_multiple", "compute", "adapters",
             "active_adapter", "mixing_adapters")


def merged_layer(layer):
    """A plain `Conv2D`/`Dense` holding W = V diag(S) U^T of an SVF layer.

    With named adapters, the active one is merged (the base when disabled,
    the current mix while learning mixing weights).
    """
    config = {k: v for k, v in layer.get_config().items() if k not in _SVF_KEYS}
    if isinstance(layer, SVFConv2D):
        plain = keras.layers.Conv2D.from_config(config)
        channels = layer._svf_kernel_shape[-2] * layer.groups
        plain.build((None, None, None, channels) if layer.data_format == "channels_last"
                    else (None, channels, None, None))
    else:
        plain = keras.layers.Dense.from_config(config)
        plain.build((None, layer._svf_kernel_shape[0]))
    folded = layer.svf_folded_kernel()
    plain.kernel.assign(ops.cast(ops.reshape(folded, layer._svf_kernel_shape),
                                 plain.kernel.dtype))
    if layer.use_bias:
        plain.bias.assign(layer.bias)
    plain.trainable = layer.trainable
    return plain


def merge_svf(model):
    """Returns a model in which every SVF layer is a plain Conv2D/Dense again.

    The merged kernel is the composed U diag(S) V^T, so outputs equal the SVF
    model's (to float rounding) and inference costs what the original model
    cost; the result has no custom layer and exports as a SavedModel that
    needs no svf_tf to load. Other layers are shared with `model`. A model
    without SVF layers is returned as is.

    Args:
        model: a functional or Sequential `keras.Model`.
    """
    svf_layers = [layer for _, layer in iter_layers(model, graph_models_only=True)
                  if isinstance(layer, SVFFactorization)]
    if not svf_layers:
        hidden = [path for path, layer in iter_layers(model)
                  if isinstance(layer, SVFFactorization)]
        if hidden:
            raise ValueError(
                f"merge_svf: the SVF layer '{hidden[0]}' sits inside a subclassed layer or "
                "model, which cannot be rebuilt; merge the functional part (e.g. the "
                "backbone) with merge_svf and build the outer model on it.")
        return model
    if not is_graph_model(model):
        raise ValueError(
            f"merge_svf needs a functional or Sequential keras.Model; got "
            f"{type(model).__name__}.")
    targets = {id(layer) for layer in svf_layers}
    return keras.models.clone_model(
        model, clone_function=lambda layer: merged_layer(layer) if id(layer) in targets
        else layer, recursive=True)
