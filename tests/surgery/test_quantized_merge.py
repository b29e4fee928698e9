"""merge_svf then Keras' int8 quantization: the error it adds, measured against the float model."""

import keras
import numpy as np
import pytest

import svf_tf
from tests.helpers import relative_error

# Keras 3.15 quantizes Dense/EinsumDense/Embedding kernels to int8 (per output
# channel, with int8 activations); Conv2D has no quantized path and stays float.
INT8_RELATIVE_ERROR = 0.03  # measured 1.24% here (max abs error / max abs output)


def svf_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(16, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu", name="fc1")(h)
    model = svf_tf.apply_svf(keras.Model(inputs, keras.layers.Dense(10, name="fc2")(h)))
    rng = np.random.default_rng(3)  # a stand-in for training the singular values
    for layer in model.layers:
        if hasattr(layer, "svf_s"):
            layer.svf_s.assign(layer.svf_s.numpy() * rng.uniform(0.5, 1.5, layer.svf_rank))
    return model


@pytest.mark.filterwarnings("ignore:Layer (InputLayer|Conv2D|Flatten) does not have")
def test_merged_model_quantizes_to_int8_within_the_stated_error():
    model = svf_model()
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    merged = svf_tf.merge_svf(model)
    expected = keras.ops.convert_to_numpy(model(x))
    merged.quantize("int8")
    modes = {layer.name: layer.quantization_mode for layer in merged.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))}
    assert modes == {"conv": None, "fc1": "int8", "fc2": "int8"}
    error = relative_error(merged(x), expected)
    assert 0 < error < INT8_RELATIVE_ERROR, error


def test_svf_layers_refuse_quantization_with_the_fix():
    with pytest.raises(ValueError, match="Call svf_tf.merge_svf\\(model\\) first, then "
                                         "quantize the merged model"):
        svf_model().get_layer("fc1").quantize("int8")
