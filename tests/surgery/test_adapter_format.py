"""The versioned adapter file format: readable header, old files, safe reading."""

import io
import json
import pathlib
import zipfile

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import svf_tf
from svf_tf.surgery.adapter_format import read_adapter_header
from tests.surgery.test_svf_weights import X, base_model, perturb

# Written by the version-1 code (svf_tf/surgery/svf_weights.py at commit 5c4e3d1) from
# perturb(apply_svf(numpy_base_model(), filters="block")).
V1_FILE = pathlib.Path(__file__).parent / "data" / "adapter_v1.svf.npz"


def numpy_base_model():
    """base_model with weights drawn by NumPy: the same on every Keras backend."""
    model = base_model(0)
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in model.weights])
    return model


def test_a_version_1_file_still_loads():
    expected = svf_tf.apply_svf(numpy_base_model(), filters="block")
    perturb(expected)  # the same seeded factors the file was written from
    model = svf_tf.apply_svf(numpy_base_model(), filters="block")
    assert svf_tf.load_svf_weights(model, V1_FILE) == 2
    np.testing.assert_array_equal(convert_to_numpy(model(X)), convert_to_numpy(expected(X)))
    header = read_adapter_header(V1_FILE)
    assert header["version"] == 1 and [e["path"] for e in header["layers"]] == [
        "block1", "block2"]


def test_header_is_plain_json_with_options_shapes_and_settings(tmp_path):
    model = svf_tf.apply_svf(base_model(0), filters="block2", parametrization="exp")
    path = svf_tf.save_svf_weights(model, tmp_path / "a.svf.npz",
                                   settings={"dataset": "pascal", "fold": 0, "shot": 1})
    with zipfile.ZipFile(path) as archive:  # readable without svf_tf or numpy
        header = json.loads(archive.read("header.json").decode("utf-8"))
    assert header["format"] == "svf_tf.adapter" and header["version"] == 2
    assert header["settings"] == {"dataset": "pascal", "fold": 0, "shot": 1}
    assert header["created_by"]["keras"] == keras.__version__
    (entry,) = header["layers"]
    # block2: Conv2D(4, 1) on 8 channels, folded (8, 4): rank 4.
    assert entry["path"] == "block2" and entry["kernel_shape"] == [1, 1, 8, 4]
    assert entry["rank"] == 4 and entry["variables"] == {"svf_s_prime": [4]}
    assert (entry["trainable_factors"], entry["parametrization"], entry["rank_multiple"],
            entry["compute"]) == (["S"], "exp", 1, "factored")
    assert len(entry["fingerprint"]) == 8


def rewrite_header(path, change):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(members["header.json"])
    change(header)
    members["header.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_newer_versions_and_other_formats_are_refused_with_the_fix(tmp_path):
    model = svf_tf.apply_svf(base_model(0), filters="block")
    path = svf_tf.save_svf_weights(model, tmp_path / "a.svf.npz")
    rewrite_header(path, lambda h: h.update(version=3))
    with pytest.raises(ValueError, match="format version 3; this svf_tf reads versions 1 to "
                                         "2: upgrade svf_tf"):
        svf_tf.load_svf_weights(model, path)
    rewrite_header(path, lambda h: h.update(format="peft"))
    with pytest.raises(ValueError, match="has format 'peft', not an svf_tf adapter"):
        svf_tf.load_svf_weights(model, path)


def test_pickled_arrays_are_never_unpickled(tmp_path):
    model = svf_tf.apply_svf(base_model(0), filters="block")
    path = svf_tf.save_svf_weights(model, tmp_path / "a.svf.npz")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    payload = io.BytesIO()
    np.save(payload, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    members["0__svf_s.npy"] = payload.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="'0__svf_s.npy' cannot be read without unpickling"):
        svf_tf.load_svf_weights(model, path)


def test_a_different_trainable_set_is_refused_with_the_fix(tmp_path):
    base = base_model(0)
    path = svf_tf.save_svf_weights(svf_tf.apply_svf(base, filters="block"),
                                   tmp_path / "a.svf.npz")
    with pytest.raises(ValueError, match="layer 'block1': the model trains \\['svf_u'\\], which "
                                         "the file does not hold; apply SVF with "
                                         "trainable_factors as in the file"):
        svf_tf.load_svf_weights(
            svf_tf.apply_svf(base, filters="block", trainable_factors="US"), path)


def test_settings_must_be_json(tmp_path):
    model = svf_tf.apply_svf(base_model(0), filters="block")
    with pytest.raises(ValueError, match="settings must be JSON-serialisable"):
        svf_tf.save_svf_weights(model, tmp_path / "a.svf.npz", settings={"x": object()})
    assert not (tmp_path / "a.svf.npz").exists()
