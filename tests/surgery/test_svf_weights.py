"""Adapter files: round trip, size, and mismatches named by layer."""

import os

import keras
import numpy as np
import pytest

import svf_tf
from svf_tf import SVFConv2D


def base_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(8, 3, name="stem")(inputs)
    h = keras.layers.Conv2D(8, 3, name="block1")(h)
    return keras.Model(inputs, keras.layers.Conv2D(4, 1, name="block2")(h))


X = np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype("float32")


def perturb(model):
    rng = np.random.default_rng(5)
    for layer in model.layers:
        if isinstance(layer, SVFConv2D):
            layer.svf_s.assign(layer.svf_s.numpy() * rng.uniform(0.5, 1.5, layer.svf_rank))


def test_round_trip_restores_outputs(tmp_path):
    base = base_model(0)
    trained = svf_tf.apply_svf(base, filters="block")
    perturb(trained)
    path = svf_tf.save_svf_weights(trained, tmp_path / "a.svf.npz")
    fresh = svf_tf.apply_svf(base, filters="block")
    assert not np.allclose(fresh(X), trained(X))
    assert svf_tf.load_svf_weights(fresh, path) == 2
    np.testing.assert_array_equal(fresh(X), trained(X))


def test_file_holds_only_trainable_factors(tmp_path):
    trained = svf_tf.apply_svf(base_model(0))
    path = svf_tf.save_svf_weights(trained, tmp_path / "a.svf.npz")
    with np.load(path) as archive:
        keys = sorted(k for k in archive.files if k != "header")
    assert keys == ["0__svf_s", "1__svf_s", "2__svf_s"]


def test_different_base_weights_are_refused_naming_the_layer(tmp_path):
    path = svf_tf.save_svf_weights(svf_tf.apply_svf(base_model(0), filters="block"),
                                   tmp_path / "a.svf.npz")
    other = svf_tf.apply_svf(base_model(1), filters="block")
    before = [w.numpy() for w in other.weights]
    with pytest.raises(ValueError, match="at layer 'block1': its frozen base weights differ"):
        svf_tf.load_svf_weights(other, path)
    for w, b in zip(other.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), b)  # nothing assigned


def test_different_layer_set_is_refused_naming_the_layer(tmp_path):
    base = base_model(0)
    path = svf_tf.save_svf_weights(svf_tf.apply_svf(base, filters="block"),
                                   tmp_path / "a.svf.npz")
    with pytest.raises(ValueError, match="SVF layer 'stem' is not in the adapter"):
        svf_tf.load_svf_weights(svf_tf.apply_svf(base), path)
    with pytest.raises(ValueError, match="layer 'block2' is not an SVF layer of the model"):
        svf_tf.load_svf_weights(svf_tf.apply_svf(base, filters="block1"), path)
    with pytest.raises(ValueError, match="parametrization is 'exp' in the model but 'direct'"):
        svf_tf.load_svf_weights(svf_tf.apply_svf(base, filters="block",
                                                 parametrization="exp"), path)


def test_error_names_the_first_mismatching_layer_in_model_order(tmp_path):
    # stem differs in its base weights, block2 is missing from the adapter: the
    # error must name stem, the first layer of the model that does not fit.
    path = svf_tf.save_svf_weights(svf_tf.apply_svf(base_model(0), filters="stem|block1"),
                                   tmp_path / "a.svf.npz")
    with pytest.raises(ValueError, match="at layer 'stem': its frozen base weights differ"):
        svf_tf.load_svf_weights(svf_tf.apply_svf(base_model(1)), path)


def test_bad_paths(tmp_path):
    model = svf_tf.apply_svf(base_model(0))
    with pytest.raises(FileNotFoundError, match="missing.svf.npz"):
        svf_tf.load_svf_weights(model, tmp_path / "missing.svf.npz")
    with pytest.raises(ValueError, match="must end in '.npz'"):
        svf_tf.save_svf_weights(model, tmp_path / "a.h5")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not an svf_tf adapter file"):
        svf_tf.load_svf_weights(model, tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="has no SVF layers"):
        svf_tf.save_svf_weights(base_model(0), tmp_path / "b.npz")


@pytest.mark.slow  # two SVF ResNet-50s; test_file_holds_only_trainable_factors is the small one
def test_resnet50_stage3_to_5_adapter_is_small(tmp_path):
    resnet = keras.applications.ResNet50(weights=None, include_top=False,
                                         input_shape=(32, 32, 3))
    svf_model = svf_tf.apply_svf(resnet, filters=r"conv[345]_block")
    path = svf_tf.save_svf_weights(svf_model, tmp_path / "r50.svf.npz")
    assert os.path.getsize(path) < 200_000  # 12,544 floats plus the header
    assert svf_tf.load_svf_weights(svf_tf.apply_svf(resnet, filters=r"conv[345]_block"),
                                   path) == 42
