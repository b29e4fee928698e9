"""Adapter files: round trip, size, and mismatches named by layer."""

import os
import struct
import zipfile

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

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
    assert not np.allclose(convert_to_numpy(fresh(X)), convert_to_numpy(trained(X)))
    assert svf_tf.load_svf_weights(fresh, path) == 2
    np.testing.assert_array_equal(convert_to_numpy(fresh(X)), convert_to_numpy(trained(X)))


def test_file_holds_only_trainable_factors(tmp_path):
    trained = svf_tf.apply_svf(base_model(0))
    path = svf_tf.save_svf_weights(trained, tmp_path / "a.svf.npz")
    with np.load(path) as archive:
        keys = sorted(k for k in archive.files if k != "header.json")
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


# Damaged adapter files: one ValueError naming the file and the problem, nothing assigned.


@pytest.fixture
def adapter_and_model(tmp_path):
    """A trained adapter file and a fresh SVF model it fits (with its variables' values)."""
    base = base_model(0)
    trained = svf_tf.apply_svf(base, filters="block")
    perturb(trained)
    path = svf_tf.save_svf_weights(trained, tmp_path / "a.svf.npz")
    model = svf_tf.apply_svf(base, filters="block")
    return path, model


def rewrite_adapter(path, change):
    """Rewrites the adapter at `path` with `change(arrays)` applied to its .npy arrays.

    The JSON header member is kept as it is (unless `change` adds a 'header'
    array, which then stands alone, as in a version-1 file).
    """
    with zipfile.ZipFile(path) as archive:
        header = archive.read("header.json") if "header.json" in archive.namelist() else None
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "header.json"}
    change(arrays)
    with zipfile.ZipFile(path, "w") as archive:
        if header is not None and "header" not in arrays:
            archive.writestr("header.json", header)
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(value))


def assert_refused_untouched(model, path, *words):
    before = [v.numpy().copy() for v in model.weights]
    with pytest.raises(ValueError) as error:
        svf_tf.load_svf_weights(model, path)
    message = str(error.value)
    assert "\n" not in message and len(message) < 320, message
    assert str(path) in message, message
    for word in words:
        assert word in message, (word, message)
    for variable, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_adapter_is_refused(adapter_and_model, keep):
    path, model = adapter_and_model
    data = open(path, "rb").read()
    with open(path, "wb") as file:
        file.write(data[:int(len(data) * keep)])
    assert_refused_untouched(model, path, "cannot be read as .npz", "truncated")


def test_adapter_with_a_corrupted_array_is_refused(adapter_and_model):
    path, model = adapter_and_model
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("1__svf_s.npy")
    data = bytearray(open(path, "rb").read())
    # Flip the last 8 bytes of the member's data (float values): its CRC no longer
    # matches, while the zip directory stays intact. The local header is 30 bytes,
    # then the name and extra field.
    name_length, extra_length = struct.unpack(
        "<HH", data[member.header_offset + 26:member.header_offset + 30])
    end = member.header_offset + 30 + name_length + extra_length + member.compress_size
    data[end - 8:end] = bytes(b ^ 0xFF for b in data[end - 8:end])
    open(path, "wb").write(bytes(data))
    assert_refused_untouched(model, path, "cannot be read as .npz", "Bad CRC-32")


def test_adapter_missing_an_array_is_refused(adapter_and_model):
    path, model = adapter_and_model
    rewrite_adapter(path, lambda arrays: arrays.pop("1__svf_s"))
    assert_refused_untouched(model, path, "'1__svf_s'", "missing", "layer 'block2'")


def test_adapter_array_of_the_wrong_shape_is_refused(adapter_and_model):
    path, model = adapter_and_model
    rank = model.get_layer("block2").svf_rank

    def shorten(arrays):
        arrays["1__svf_s"] = arrays["1__svf_s"][:-1]

    rewrite_adapter(path, shorten)
    assert_refused_untouched(model, path, "'1__svf_s'", f"({rank - 1},)", f"({rank},)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_adapter_with_non_finite_values_is_refused(adapter_and_model, bad):
    path, model = adapter_and_model

    def poison(arrays):
        arrays["1__svf_s"] = arrays["1__svf_s"].copy()
        arrays["1__svf_s"][2] = bad

    rewrite_adapter(path, poison)
    # The first layer (block1) is fine and would load first: nothing may be assigned.
    assert_refused_untouched(model, path, "'1__svf_s'", "1 NaN or inf", "layer 'block2'")


def test_adapter_without_header_or_with_a_damaged_one_is_refused(adapter_and_model):
    path, model = adapter_and_model
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "header.json"}
    np.savez(path, **arrays)
    assert_refused_untouched(model, path, "it has no header", "save_svf_weights")
    rewrite_adapter(path, lambda arrays: arrays.update(header=np.array("{not json")))
    assert_refused_untouched(model, path, "header is not JSON")
    rewrite_adapter(path, lambda arrays: arrays.update(header=np.array(
        '{"format": "svf_tf.adapter.v1", "layers": [{"path": "block1"}]}')))
    assert_refused_untouched(model, path, "damaged header")
