"""apply_svf on real Keras architectures, against the original models."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import svf_tf
from svf_tf import SVFConv2D, SVFDense
from tests.helpers import relative_error, tensorflow_only, two_replica_strategy

X64 = np.random.default_rng(0).uniform(-1, 1, size=(2, 64, 64, 3)).astype("float32")


@pytest.fixture(scope="module")
def resnet():
    return keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))


def svf_layers(model):
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += svf_layers(layer)
        elif isinstance(layer, (SVFConv2D, SVFDense)):
            found.append(layer)
    return found


@pytest.mark.slow  # 42 ResNet-50 SVDs; small: test_nested_model_targeted_by_path_or_callable
def test_resnet50_same_outputs_and_only_matched_convs(resnet):
    pattern = r"conv[345]_block"
    svf_model = svf_tf.apply_svf(resnet, filters=pattern)
    assert relative_error(svf_model(X64), resnet(X64)) < 1e-5
    expected = {layer.name for layer in resnet.layers
                if type(layer) is keras.layers.Conv2D and re.search(pattern, layer.name)}
    assert {layer.name for layer in svf_layers(svf_model)} == expected
    # BatchNorm (and every unmatched layer) is the very same instance.
    originals = {layer.name: layer for layer in resnet.layers}
    for layer in svf_model.layers:
        if layer.name not in expected and not isinstance(layer, keras.layers.InputLayer):
            assert layer is originals[layer.name]


@pytest.mark.slow  # 13 SVDs of VGG16 kernels; test_dict_outputs_are_kept is the small one
def test_vgg16_every_conv():
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    svf_model = svf_tf.apply_svf(vgg)
    assert len(svf_layers(svf_model)) == 13
    assert relative_error(svf_model(X64), vgg(X64)) < 1e-5


def test_sequential_with_dense_and_list_of_filters():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c1"),
                              keras.layers.Flatten(), keras.layers.Dense(5, name="fc"),
                              keras.layers.Dense(2, name="out")])
    svf_model = svf_tf.apply_svf(model, filters=["^c1$", "^fc$"], compute="factored")
    assert [type(x).__name__ for x in svf_model.layers] == ["SVFConv2D", "Flatten", "SVFDense",
                                                          "Dense"]
    x = X64[:, :8, :8]
    assert relative_error(svf_model(x), model(x)) < 1e-5


def nested_model():
    inner_in = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv_a")(inner_in)
    h = keras.layers.BatchNormalization(name="bn")(h)
    backbone = keras.Model(inner_in, keras.layers.Conv2D(8, 1, name="conv_b")(h),
                           name="backbone")
    inputs = keras.Input((16, 16, 3))
    out = keras.layers.Conv2D(2, 1, name="conv_a")(backbone(inputs))  # same name, other level
    return keras.Model(inputs, out, name="segmenter")


def test_filters_matching_nothing_name_the_filter():
    # A small nested model: a ResNet-50 adds nothing here and takes ~25 s to build under
    # the JAX backend (tests/test_backends.py runs this file again there).
    with pytest.raises(ValueError, match=r"filters='conv9_block' matched none of the model's "
                                         r"3 Conv2D/Dense/EinsumDense layers \(e\.g\. "
                                         r"backbone/conv_a, backbone/conv_b, conv_a\)"):
        svf_tf.apply_svf(nested_model(), filters="conv9_block")


def test_nested_model_targeted_by_path_or_callable():
    model = nested_model()
    x = X64[:, :16, :16]
    by_path = svf_tf.apply_svf(model, filters=r"^backbone/")
    assert sorted(layer.name for layer in svf_layers(by_path)) == ["conv_a", "conv_b"]
    assert type(by_path.layers[-1]) is keras.layers.Conv2D  # outer conv_a untouched
    assert relative_error(by_path(x), model(x)) < 1e-5
    by_callable = svf_tf.apply_svf(model, filters=lambda layer: layer.kernel.shape[0] == 1)
    assert sorted(layer.name for layer in svf_layers(by_callable)) == ["conv_a", "conv_b"]


def test_dict_outputs_are_kept():
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, name="a")(inputs)
    model = keras.Model(inputs, {"layer0": a, "layer1": keras.layers.Conv2D(2, 1, name="b")(a)})
    svf_model = svf_tf.apply_svf(model)  # no filters: every conv
    assert sorted(layer.name for layer in svf_layers(svf_model)) == ["a", "b"]
    x = X64[:, :16, :16]
    out, expected = svf_model(x), model(x)
    assert set(out) == {"layer0", "layer1"}
    assert out["layer0"].shape == (2, 14, 14, 4) and out["layer1"].shape == (2, 14, 14, 2)
    for key in expected:
        assert relative_error(out[key], expected[key]) < 1e-5


def test_bad_filters_and_options():
    model = nested_model()
    with pytest.raises(ValueError, match=r"'\[' is not a valid regex"):
        svf_tf.apply_svf(model, filters="[")
    with pytest.raises(ValueError, match="filters=42 is not accepted"):
        svf_tf.apply_svf(model, filters=42)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['rank'\]"):
        svf_tf.apply_svf(model, rank=3)
    with pytest.raises(ValueError, match="parametrization='log'"):
        svf_tf.apply_svf(model, parametrization="log")


class Blocks(keras.Model):
    """A subclassed model holding its layers in an attribute, a list and a dict."""

    def __init__(self):
        super().__init__(name="blocks")
        self.conv = keras.layers.Conv2D(4, 3, name="conv")
        self.stack = [keras.layers.Dense(6, name="fc0"), keras.layers.Dense(5, name="fc1")]
        self.heads = {"out": keras.layers.EinsumDense("abc,cd->abd", (None, 3), bias_axes="d",
                                                      name="head")}

    def call(self, x):
        x = keras.ops.reshape(self.conv(x), (keras.ops.shape(x)[0], -1, 4))
        for layer in self.stack:
            x = layer(x)
        return self.heads["out"](x)


def test_subclassed_model_is_changed_in_place_and_merged_back():
    model = Blocks()
    x = X64[:, :5, :5]
    expected = keras.ops.convert_to_numpy(model(x))
    weights = len(model.weights)
    svf_model = svf_tf.apply_svf(model, filters=r"^(conv|fc1|head)$")
    assert svf_model is model
    assert [type(layer).__name__ for layer in (model.conv, *model.stack, model.heads["out"])] \
        == ["SVFConv2D", "Dense", "SVFDense", "SVFEinsumDense"]
    assert [layer.name for layer in model._layers] == ["conv", "fc0", "fc1", "head"]
    assert relative_error(model(x), expected) < 1e-5
    assert sorted(v.name for v in model.trainable_variables) == [
        "bias", "kernel", "svf_s", "svf_s", "svf_s"]  # fc0 is not selected
    merged = svf_tf.merge_svf(model)
    assert merged is model and len(model.weights) == weights
    assert type(model.heads["out"]) is keras.layers.EinsumDense
    assert relative_error(model(x), expected) < 1e-5


def test_graph_and_nested_layers_together():
    inputs = keras.Input((5, 5, 3))
    blocks = Blocks()
    model = keras.Model(inputs, keras.layers.Dense(2, name="top")(blocks(inputs)))
    x = X64[:, :5, :5]
    expected = keras.ops.convert_to_numpy(model(x))
    svf_model = svf_tf.apply_svf(model, filters=r"^(top|blocks/conv)$")
    assert svf_model is not model  # the graph layer needs a clone ...
    assert type(svf_model.get_layer("top")).__name__ == "SVFDense"
    assert type(model.get_layer("top")) is keras.layers.Dense
    assert svf_model.get_layer("blocks") is blocks  # ... which shares the changed Blocks
    assert type(blocks.conv).__name__ == "SVFConv2D"
    assert relative_error(svf_model(x), expected) < 1e-5
    merged = svf_tf.merge_svf(svf_model)
    assert type(merged.get_layer("top")) is keras.layers.Dense
    assert type(blocks.conv) is keras.layers.Conv2D
    assert relative_error(merged(x), expected) < 1e-5


def test_layers_out_of_reach_are_refused_before_any_change():
    class Hidden(keras.layers.Layer):  # a sublayer tracked, but held by no attribute
        def __init__(self):
            super().__init__()
            self._tracker.add_to_store("layers", keras.layers.Dense(2, name="lost"))

        def build(self, shape):
            self._layers[0].build(shape)

        def call(self, x):
            return self._layers[0](x)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(Hidden()(inputs)))
    with pytest.raises(ValueError, match="layer 'hidden/lost' is a sublayer of Hidden"):
        svf_tf.apply_svf(model)
    assert type(model.get_layer("fc")) is keras.layers.Dense  # nothing was replaced

    class Holder(keras.layers.Layer):  # a functional model held by a subclassed layer
        def __init__(self):
            super().__init__()
            self.inner = nested_model()

        def call(self, x):
            return self.inner(x)

    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, Holder()(inputs))
    with pytest.raises(ValueError, match="layer 'holder/segmenter/backbone/conv_a' belongs to "
                                         "the functional model 'backbone'"):
        svf_tf.apply_svf(model, filters="backbone")


@tensorflow_only
def test_train_step_under_mirrored_strategy_matches_one_device():
    def run(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(7)
            model = svf_tf.apply_svf(nested_model())
            optimizer = keras.optimizers.SGD(0.1)
        x = tf.constant(X64[:, :16, :16])

        def step(batch):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(batch))) / 2.0  # global batch of 2
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(x).batch(2))
        for batch in dataset:
            strategy.run(tf.function(step), args=(batch,))
        return {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}

    two = run(two_replica_strategy())
    one = run(tf.distribute.get_strategy())
    assert sorted(two) == sorted(one) and all("svf_s" in k or "bn" in k for k in one)
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6)
