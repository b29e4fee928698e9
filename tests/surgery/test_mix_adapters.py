"""mix_adapters and learned mixing on a model, against separately built SVF models."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import svf_tf
from tests.surgery.test_adapters import scaled
from tests.surgery.test_svf_weights import X, base_model


@pytest.fixture
def model_and_references(tmp_path):
    base = base_model(0)
    separate = {name: scaled(svf_tf.apply_svf(base, filters="block"), seed)
                for name, seed in (("a", 1), ("b", 2))}
    model = svf_tf.apply_svf(base, filters="block")
    for name, reference in separate.items():
        svf_tf.load_svf_weights(
            model, svf_tf.save_svf_weights(reference, tmp_path / f"{name}.svf.npz"),
            adapter=name)
    return base, separate, model


def test_weights_one_and_zero_give_the_first_adapter_exactly(model_and_references):
    _, separate, model = model_and_references
    svf_tf.mix_adapters(model, {"a": 1.0, "b": 0.0}, "only_a")
    svf_tf.set_adapter(model, "only_a")
    np.testing.assert_array_equal(convert_to_numpy(model(X)), convert_to_numpy(separate["a"](X)))


def test_half_half_mix_equals_a_model_with_the_mean_singular_values(model_and_references):
    base, separate, model = model_and_references
    svf_tf.mix_adapters(model, {"a": 0.5, "b": 0.5}, "half")
    svf_tf.set_adapter(model, "half")
    reference = svf_tf.apply_svf(base, filters="block")
    for name in ("block1", "block2"):
        mean = (separate["a"].get_layer(name).svf_s.numpy().astype(np.float64)
                + separate["b"].get_layer(name).svf_s.numpy()) / 2
        reference.get_layer(name).svf_s.assign(mean.astype(np.float32))
    np.testing.assert_allclose(convert_to_numpy(model(X)), convert_to_numpy(reference(X)),
                               rtol=1e-6, atol=1e-6)


def test_learned_mixing_trains_only_its_weights_and_freezes_into_an_adapter(
        model_and_references):
    base, separate, model = model_and_references
    mix_weights = svf_tf.learn_adapter_mixing(model, ["a", "b"], initial_weights=[1.0, 0.0])
    np.testing.assert_allclose(convert_to_numpy(model(X)), convert_to_numpy(separate["a"](X)),
                               rtol=1e-6, atol=1e-6)
    assert [v.name for v in model.trainable_variables if v.name.startswith("svf_")] == [
        "svf_mix_weights", "svf_mix_weights"]
    target = keras.ops.convert_to_numpy(separate["b"](X))  # the mix should move towards b
    model.get_layer("stem").trainable = False  # only the mixing weights train
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")  # any backend
    losses = [float(model.train_on_batch(X, target)) for _ in range(5)]
    assert losses[-1] < losses[0]
    learned = [w.numpy() for w in mix_weights]
    svf_tf.freeze_adapter_mixing(model, "learned")
    assert svf_tf.active_adapter(model) == "learned"
    # The frozen mix: S = w_a S_a + w_b S_b per layer, from the separate models.
    reference = svf_tf.apply_svf(base, filters="block")
    for name, w in zip(("block1", "block2"), learned, strict=True):
        mix = (w[0] * separate["a"].get_layer(name).svf_s.numpy().astype(np.float64)
               + w[1] * separate["b"].get_layer(name).svf_s.numpy())
        reference.get_layer(name).svf_s.assign(mix.astype(np.float32))
    np.testing.assert_allclose(convert_to_numpy(model(X)), convert_to_numpy(reference(X)),
                               rtol=1e-5, atol=1e-5)
    assert not model.get_layer("block1").mixing_adapters


def test_mix_errors_change_nothing(model_and_references):
    _, _, model = model_and_references
    with pytest.raises(ValueError, match="has no adapter 'c'"):
        svf_tf.mix_adapters(model, {"a": 0.5, "c": 0.5}, "m")
    with pytest.raises(ValueError, match="already has an adapter 'a'"):
        svf_tf.mix_adapters(model, {"a": 0.5, "b": 0.5}, "a")
    assert svf_tf.list_adapters(model) == ["a", "b"]
