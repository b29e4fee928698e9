"""Adapter files are written whole or not at all: a full disk keeps the previous adapter."""

import errno
import os

import keras
import numpy as np
import pytest

import svf_tf
from tests.data.disk_full import fill_disk, leftovers


def svf_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, name="stem")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block1")(h))
    return svf_tf.apply_svf(model, filters="block")


def test_full_disk_keeps_the_previous_adapter(tmp_path, monkeypatch):
    model = svf_model()
    path = str(tmp_path / "adapters" / "a.svf.npz")
    svf_tf.save_svf_weights(model, path)
    with open(path, "rb") as f:
        written = f.read()
    layer = model.get_layer("block1")
    layer.svf_s.assign(layer.svf_s.numpy() * 2)
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        svf_tf.save_svf_weights(model, path)
    assert error.value.errno == errno.ENOSPC and error.value.filename == path
    with open(path, "rb") as f:
        assert f.read() == written
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    # The previous adapter still loads, with the values it was saved with.
    fresh = svf_model()
    saved_s = fresh.get_layer("block1").svf_s.numpy().copy()
    fresh.get_layer("block1").svf_s.assign(np.zeros_like(saved_s))
    svf_tf.load_svf_weights(fresh, path)
    np.testing.assert_array_equal(fresh.get_layer("block1").svf_s.numpy(), saved_s)


def test_full_disk_leaves_no_adapter(tmp_path, monkeypatch):
    fill_disk(monkeypatch)
    with pytest.raises(OSError):
        svf_tf.save_svf_weights(svf_model(), str(tmp_path / "a.svf.npz"))
    assert os.listdir(tmp_path) == []
