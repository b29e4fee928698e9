"""Shared set-up for backbone tests: Keras applications with non-trivial weights."""

import keras
import numpy as np

APPLICATIONS = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16}


def keras_application(name, seed=0):
    """`keras.applications.<name>(include_top=False, weights=None)`, any input size.

    BatchNorm statistics and affine parameters are randomised (a fresh BN is
    the identity up to epsilon, which would hide BN mistakes); biases too.
    """
    model = APPLICATIONS[name](include_top=False, weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.1, channels),
                               rng.normal(0, 0.1, channels), rng.uniform(0.5, 1.5, channels)])
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.05, layer.bias.shape))
    return model


def copy_weights_by_name(source, target):
    """Copies every weighted layer of `target` from the same-named `source` layer."""
    copied = 0
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
            copied += 1
    return copied


def intermediate_outputs(model, names, inputs):
    """The outputs of the named layers of a functional model, as numpy arrays."""
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    outputs = probe(inputs)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(y) for y in outputs]


def images(size, batch=1, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")


def numpy_features(backbone, inputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in backbone(inputs).items()}
