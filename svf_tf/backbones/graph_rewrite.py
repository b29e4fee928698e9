"""Re-running a Keras application's graph layer by layer, with replacements.

The backbones are not re-typed: each is the graph of a `keras.applications`
model, walked in order by `keras.models.clone_model`, in which every layer is
replaced by a short list of new layers (usually one copy, sometimes a
modified copy, a copy plus a BatchNorm, or nothing). Copies inherit the
source layer's weights, so Keras' ImageNet weights carry over.
"""

import keras

from svf_tf.backbones.stop_gradient import StopGradient


def clone_layer(layer, *, copy_weights=True, cls=None, **overrides):
    """A new layer from `layer`'s config with `overrides`, weights copied.

    Args:
        layer: a layer of the source application (called once, so its input
            shape is known).
        copy_weights: copy the source weights (they must keep their shapes).
        cls: class of the copy; default the source's class.
        **overrides: config entries to change (strides, dilation_rate, ...).
    """
    config = {**layer.get_config(), **overrides}
    new = (cls or type(layer)).from_config(config)
    if copy_weights and layer.weights:
        new.build(layer.input.shape)
        new.set_weights(layer.get_weights())
    return new


def rewrite_application(source, inputs, replace, endpoints, stage_of, cut_before):
    """Runs `source`'s graph on `inputs` with every layer replaced.

    Args:
        source: a functional `keras.applications` model.
        inputs: the new `keras.Input`.
        replace: `replace(layer) -> list of layers`: what runs instead of a
            source layer. The first gets the source layer's call arguments,
            the rest are chained; an empty list passes the first input
            through (the layer is dropped).
        endpoints: {source layer name: stage}; the output of that layer is
            the stage's feature map, `layer{stage}`.
        stage_of: `stage_of(source layer name) -> stage` (0..4).
        cut_before: the first stage that trains; the outputs of earlier
            stages go through a `StopGradient` so back-propagation never
            enters them. 5 cuts after every stage.

    Returns:
        (features, stages): {"layer0": tensor, ...} and {new layer name:
        stage} for every new layer.
    """
    features, stages = {}, {}

    def call_function(layer, *args, **kwargs):
        stage = stage_of(layer.name)
        new_layers = replace(layer)
        if new_layers:
            outputs = new_layers[0](*args, **kwargs)
            for new in new_layers[1:]:
                outputs = new(outputs)
        else:
            outputs = args[0]
        stages.update({new.name: stage for new in new_layers})
        if layer.name in endpoints:
            if stage < cut_before:
                cut = StopGradient(name=f"layer{stage}_stop_gradient")
                stages[cut.name] = stage
                outputs = cut(outputs)
            features[f"layer{stage}"] = outputs
        return outputs

    # clone_function=identity: the source layers are never called again; the
    # replacements are made and called by `call_function`.
    keras.models.clone_model(source, input_tensors=inputs, clone_function=lambda layer: layer,
                             call_function=call_function)
    missing = [name for name, stage in endpoints.items() if f"layer{stage}" not in features]
    if missing:
        raise ValueError(f"internal: endpoints {missing} are not in {source.name}'s graph")
    return features, stages
