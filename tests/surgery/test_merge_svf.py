"""merge_svf: plain layers, same outputs, exportable without svf_tf."""

import keras
import numpy as np
import tensorflow as tf

import svf_tf
from svf_tf import SVFConv2D
from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.surgery.layer_paths import iter_layers
from tests.helpers import relative_error, tensorflow_only


def small_svf_model():
    inputs = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c1")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu",
                            name="c2")(h)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, use_bias=False, name="c3")(h))
    svf_model = svf_tf.apply_svf(model, parametrization="exp")
    rng = np.random.default_rng(3)
    for layer in svf_model.layers:
        if isinstance(layer, SVFConv2D):
            layer.svf_s_prime.assign(rng.normal(0, 0.3, layer.svf_rank).astype(np.float32))
    return svf_model


X = np.random.default_rng(0).normal(size=(2, 20, 20, 3)).astype("float32")


def test_merged_model_has_plain_layers_and_same_outputs():
    svf_model = small_svf_model()
    merged = svf_tf.merge_svf(svf_model)
    assert not any(isinstance(layer, SVFConv2D) for layer in merged.layers)
    assert relative_error(merged(X), svf_model(X)) < 1e-5
    c1 = merged.get_layer("c1")
    assert c1.strides == (2, 2) and merged.get_layer("c2").dilation_rate == (2, 2)
    assert merged.get_layer("c3").bias is None


def test_model_without_svf_is_returned_unchanged():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert svf_tf.merge_svf(model) is model


@tensorflow_only
def test_merged_saved_model_reloads_with_tf_only(tmp_path):
    svf_model = small_svf_model()
    merged = svf_tf.merge_svf(svf_model)
    merged.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    out = reloaded.serve(tf.constant(X))
    assert relative_error(out, svf_model(X)) < 1e-5
    # Another spatial size through the same signature (unknown H, W).
    x2 = X[:1, :12, :16]
    assert relative_error(reloaded.serve(tf.constant(x2)), svf_model(x2)) < 1e-5


def test_nested_backbone_and_dense_head_are_merged():
    inner = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inner)
    backbone = keras.Model(inner, keras.layers.GlobalAveragePooling2D()(h), name="backbone")
    inputs = keras.Input((8, 8, 3))
    head = keras.layers.Dense(5, activation="relu", name="head")
    svf_model = svf_tf.apply_svf(keras.Model(inputs, head(backbone(inputs))),
                                 parametrization="exp")
    rng = np.random.default_rng(4)
    svf_layers = [layer for _, layer in iter_layers(svf_model)
                  if isinstance(layer, SVFFactorization)]
    assert len(svf_layers) == 2
    for layer in svf_layers:
        layer.svf_s_prime.assign(rng.normal(0, 0.3, layer.svf_rank).astype(np.float32))
    merged = svf_tf.merge_svf(svf_model)
    assert [(path, type(layer).__name__) for path, layer in iter_layers(merged)
            if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)] == [
        ("backbone/conv", "Conv2D"), ("head", "Dense")]
    x = X[:, :8, :8]
    assert relative_error(merged(x), svf_model(x)) < 1e-5
