"""Named adapters on a model, against separately built SVF models."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy

import svf_tf
from tests.helpers import tensorflow_only
from tests.surgery.test_svf_weights import X, base_model


def scaled(model, seed):
    """Scales every layer's S by seeded random factors (a stand-in for training)."""
    rng = np.random.default_rng(seed)
    for _, layer in svf_tf.surgery.adapters.svf_layers(model):
        layer.svf_s.assign(layer.svf_s.numpy() * rng.uniform(0.5, 1.5, layer.svf_rank))
    return model


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory):
    """A base, two separately built SVF models, and one model holding both as adapters."""
    directory = tmp_path_factory.mktemp("adapters")
    base = base_model(0)
    separate = {name: scaled(svf_tf.apply_svf(base, filters="block"), seed)
                for name, seed in (("a", 1), ("b", 2))}
    model = svf_tf.apply_svf(base, filters="block")
    for name, reference in separate.items():
        path = svf_tf.save_svf_weights(reference, directory / f"{name}.svf.npz")
        svf_tf.load_svf_weights(model, path, adapter=name)
    return base, separate, model


def test_switching_gives_the_separately_built_models(two_adapters):
    base, separate, model = two_adapters
    assert svf_tf.list_adapters(model) == ["a", "b"] and svf_tf.active_adapter(model) is None
    for name in ["a", "b", "a"]:
        svf_tf.set_adapter(model, name)
        np.testing.assert_array_equal(convert_to_numpy(model(X)),
                                      convert_to_numpy(separate[name](X)))
    svf_tf.disable_adapter(model)
    np.testing.assert_array_equal(convert_to_numpy(model(X)),
                                  convert_to_numpy(svf_tf.apply_svf(base, filters="block")(X)))
    np.testing.assert_allclose(convert_to_numpy(model(X)), convert_to_numpy(base(X)), rtol=1e-5,
                               atol=1e-5)


@tensorflow_only
def test_switching_does_not_retrace_a_compiled_function(two_adapters):
    _, separate, model = two_adapters
    svf_tf.set_adapter(model, "a")
    predict = tf.function(lambda x: model(x, training=False))
    predict(X)
    traces = predict.experimental_get_tracing_count()
    svf_tf.set_adapter(model, "b")
    np.testing.assert_array_equal(convert_to_numpy(predict(X)), convert_to_numpy(separate["b"](X)))
    svf_tf.set_adapter(model, "a")
    np.testing.assert_array_equal(convert_to_numpy(predict(X)), convert_to_numpy(separate["a"](X)))
    assert predict.experimental_get_tracing_count() == traces


def test_training_moves_only_the_active_adapter(two_adapters):
    base, separate, model = two_adapters
    svf_tf.set_adapter(model, "b")
    svf_tf.set_adapter(model, "a")
    before = {name: [layer.adapter_values(name)["svf_s"]
                     for _, layer in svf_tf.surgery.adapters.svf_layers(model)]
              for name in ("a", "b")}
    model.get_layer("stem").trainable = False  # only SVF factors train
    assert [v.name for v in model.trainable_variables] == ["svf_s", "svf_s"]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")  # any backend
    model.train_on_batch(X, np.zeros(keras.ops.shape(model(X)), np.float32))
    for i, (_, layer) in enumerate(svf_tf.surgery.adapters.svf_layers(model)):
        assert not np.allclose(layer.adapter_values("a")["svf_s"], before["a"][i])
        np.testing.assert_array_equal(layer.adapter_values("b")["svf_s"], before["b"][i])
    svf_tf.set_adapter(model, "b")
    np.testing.assert_array_equal(convert_to_numpy(model(X)), convert_to_numpy(separate["b"](X)))
    svf_tf.disable_adapter(model)  # the base is untouched by training too
    np.testing.assert_array_equal(convert_to_numpy(model(X)),
                                  convert_to_numpy(svf_tf.apply_svf(base, filters="block")(X)))
    # Put a back for the other tests of the module.
    for (_, layer), values in zip(svf_tf.surgery.adapters.svf_layers(model), before["a"],
                                  strict=True):
        layer.set_adapter_values("a", {"svf_s": values})


def test_keras_file_keeps_adapters_and_the_active_one(two_adapters, tmp_path):
    _, separate, model = two_adapters
    svf_tf.set_adapter(model, "b")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert svf_tf.list_adapters(loaded) == ["a", "b"] and svf_tf.active_adapter(loaded) == "b"
    np.testing.assert_array_equal(convert_to_numpy(loaded(X)), convert_to_numpy(separate["b"](X)))
    svf_tf.set_adapter(loaded, "a")
    np.testing.assert_array_equal(convert_to_numpy(loaded(X)), convert_to_numpy(separate["a"](X)))


def test_merge_folds_the_active_adapter(two_adapters):
    _, separate, model = two_adapters
    svf_tf.set_adapter(model, "a")
    merged = svf_tf.merge_svf(model)
    assert all(type(layer) is keras.layers.Conv2D for layer in merged.layers[1:])
    np.testing.assert_allclose(convert_to_numpy(merged(X)), convert_to_numpy(separate["a"](X)),
                               rtol=1e-5, atol=1e-5)


def test_saving_one_named_adapter_round_trips(two_adapters, tmp_path):
    base, separate, model = two_adapters
    svf_tf.set_adapter(model, "a")
    path = svf_tf.save_svf_weights(model, tmp_path / "b.svf.npz", adapter="b")
    assert svf_tf.read_adapter_header(path)["adapter"] == "b"
    fresh = svf_tf.apply_svf(base, filters="block")
    svf_tf.load_svf_weights(fresh, path)
    np.testing.assert_array_equal(convert_to_numpy(fresh(X)), convert_to_numpy(separate["b"](X)))


def test_delete_and_errors(tmp_path):
    base = base_model(0)
    model = svf_tf.apply_svf(base, filters="block")
    svf_tf.add_adapter(model, "a")
    svf_tf.add_adapter(model, "b")
    with pytest.raises(ValueError, match="already has an adapter 'a'; delete_adapter it first"):
        svf_tf.add_adapter(model, "a")
    with pytest.raises(ValueError, match="has no adapter 'c' \\(it has \\['a', 'b'\\]\\)"):
        svf_tf.set_adapter(model, "c")
    path = svf_tf.save_svf_weights(scaled(svf_tf.apply_svf(base, filters="block"), 3),
                                   tmp_path / "c.svf.npz")
    with pytest.raises(ValueError, match="has adapters \\['a', 'b'\\] but none is active"):
        svf_tf.load_svf_weights(model, path)
    svf_tf.set_adapter(model, "b")
    svf_tf.delete_adapter(model, "b")  # the active one: back to the base
    assert svf_tf.list_adapters(model) == ["a"] and svf_tf.active_adapter(model) is None
    np.testing.assert_array_equal(convert_to_numpy(model(X)),
                                  convert_to_numpy(svf_tf.apply_svf(base, filters="block")(X)))
    svf_tf.delete_adapter(model, "a")
    assert svf_tf.list_adapters(model) == []
    assert [v.name for v in model.trainable_variables if v.name.startswith("svf_")] == [
        "svf_s", "svf_s"]
    trained = scaled(svf_tf.apply_svf(base, filters="block"), 4)
    with pytest.raises(ValueError, match="layer 'block1' no longer computes its base kernel"):
        svf_tf.add_adapter(trained, "x")
    assert svf_tf.list_adapters(trained) == []  # nothing added to any layer


@pytest.mark.slow  # an SVF ResNet-50 (42 layers): ~15 s to build
def test_switch_time_on_resnet50_stages_3_to_5():
    resnet = keras.applications.ResNet50(weights=None, include_top=False,
                                         input_shape=(32, 32, 3))
    model = svf_tf.apply_svf(resnet, filters=r"conv[345]_block")
    for name in ("a", "b"):
        svf_tf.add_adapter(model, name)
    svf_tf.set_adapter(model, "a")
    start = time.perf_counter()
    for _ in range(10):
        svf_tf.set_adapter(model, "b")
        svf_tf.set_adapter(model, "a")
    per_switch = (time.perf_counter() - start) / 20
    print(f"set_adapter on 42 SVF layers: {per_switch * 1000:.1f} ms")
    assert per_switch < 0.5
