"""Weights resolution: None, "imagenet" through Keras' cache, local files. No downloads."""

import hashlib
import inspect
import os

import h5py
import keras
import numpy as np
import pytest
from keras.src.applications import resnet as keras_resnet
from keras.src.applications import vgg16 as keras_vgg16
from keras.src.legacy.saving import legacy_h5_format

from svf_tf.backbones import (
    KERAS_IMAGENET_WEIGHTS,
    build_backbone,
    keras_cache_dir,
    resolve_weights,
)
from svf_tf.weights import pretrained as module
from svf_tf.weights.pretrained import KerasWeightsFile
from tests.backbones.backbone_helpers import images, keras_application, numpy_features


def test_none_is_random_initialisation():
    assert resolve_weights(None) is None
    assert resolve_weights(None, "resnet50") is None


def test_keras_file_names_urls_and_hashes_are_keras_own():
    resnet = KERAS_IMAGENET_WEIGHTS["resnet50"]
    assert resnet.origin == keras_resnet.BASE_WEIGHTS_PATH + resnet.file_name
    assert resnet.md5 == keras_resnet.WEIGHTS_HASHES["resnet50"][1]
    vgg = KERAS_IMAGENET_WEIGHTS["vgg16"]
    assert vgg.origin == keras_vgg16.WEIGHTS_PATH_NO_TOP
    assert vgg.md5 in inspect.getsource(keras_vgg16)  # the notop hash is inline there


def test_cache_dir_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_cache_dir() == str(tmp_path)
    monkeypatch.delenv("KERAS_HOME")
    assert keras_cache_dir() in (os.path.expanduser("~/.keras"), "/tmp/.keras")


def test_imagenet_offline_error_says_where_to_put_the_file(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        resolve_weights("imagenet", "resnet50", download=False, cache_dir=str(tmp_path))
    message = str(error.value)
    assert str(tmp_path / "models" / KERAS_IMAGENET_WEIGHTS["resnet50"].file_name) in message
    assert "$KERAS_HOME/models" in message and "~/.keras/models" in message
    assert KERAS_IMAGENET_WEIGHTS["resnet50"].origin in message


def _fake_cached_file(tmp_path, monkeypatch, content=b"\x89HDF\r\n\x1a\nfake weights"):
    path = tmp_path / "models" / "fake_notop.h5"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    entry = KerasWeightsFile("fake_notop.h5", "https://example.invalid/fake_notop.h5",
                             hashlib.md5(b"\x89HDF\r\n\x1a\nfake weights").hexdigest())
    monkeypatch.setitem(module.KERAS_IMAGENET_WEIGHTS, "resnet50", entry)
    return path


def test_imagenet_uses_a_cached_file_with_the_right_hash(tmp_path, monkeypatch):
    path = _fake_cached_file(tmp_path, monkeypatch)
    assert resolve_weights("imagenet", "resnet50", download=False,
                           cache_dir=str(tmp_path)) == str(path)


def test_imagenet_rejects_a_cached_file_with_another_hash(tmp_path, monkeypatch):
    path = _fake_cached_file(tmp_path, monkeypatch, content=b"half a download")
    with pytest.raises(ValueError, match="md5") as error:
        resolve_weights("imagenet", "resnet50", download=False, cache_dir=str(tmp_path))
    assert str(path) in str(error.value)


def test_imagenet_is_refused_for_variants_without_keras_weights():
    for kwargs in (dict(name="resnet50", stem="deep"), dict(name="vgg16", batch_norm=True)):
        with pytest.raises(ValueError, match="no ImageNet weights"):
            build_backbone(weights="imagenet", **kwargs)


def test_missing_path_raises_file_not_found_with_the_value(tmp_path):
    missing = str(tmp_path / "nope.weights.h5")
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        build_backbone("vgg16", weights=missing)


@pytest.mark.parametrize("name,content,message", [
    ("model.keras", b"PK\x03\x04", "save_weights"),
    ("model.pth", b"\x80\x02", "PyTorch"),
    ("notes.txt", b"hello", "not a weights file"),
    ("page.h5", b"<html>404</html>", "not HDF5"),
])
def test_non_weights_files_are_rejected(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        resolve_weights(str(path))
    assert name in str(error.value)


def test_directory_and_bad_types_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="not a weights file"):
        resolve_weights(str(tmp_path))
    with pytest.raises(ValueError, match="weights=3"):
        resolve_weights(3)


@pytest.mark.parametrize("suffix", [".h5", ".weights.h5"])
def test_local_keras_application_file_loads(tmp_path, suffix):
    application = keras_application("vgg16", seed=7)
    path = tmp_path / f"vgg16{suffix}"
    if suffix == ".h5":
        # The legacy layout of Keras' downloadable *_notop.h5 files.
        with h5py.File(path, "w") as file:
            legacy_h5_format.save_weights_to_hdf5_group(file, application)
    else:
        application.save_weights(str(path))
    assert resolve_weights(path) == str(path)
    backbone = build_backbone("vgg16", weights=str(path))
    x = images(32)
    features = numpy_features(backbone, x)
    expected = keras.Model(application.input, application.get_layer("block5_conv3").output)(x)
    np.testing.assert_allclose(features["layer4"], expected, rtol=1e-5, atol=1e-6)


def test_a_file_for_another_network_is_one_short_value_error(tmp_path):
    # Keras' own message for this was ~6,000 characters (every layer's expected variables).
    path = tmp_path / "vgg16.weights.h5"
    keras_application("vgg16").save_weights(str(path))
    with pytest.raises(ValueError, match="does not fit") as error:
        build_backbone("resnet50", weights=str(path))
    message = str(error.value)
    assert str(path) in message and "\n" not in message and len(message) < 400
    assert "106 layers of the model not set (conv1_conv, ... 105 more)" in message
    assert "13 layers of the file unused (block1_conv1, ... 12 more)" in message


@pytest.mark.slow  # a full-size deep-stem ResNet-50 saved and built again
def test_own_weights_file_round_trip_for_the_deep_stem(tmp_path):
    first = build_backbone("resnet50", stem="deep")
    path = tmp_path / "deep.weights.h5"
    first.save_weights(str(path))
    second = build_backbone("resnet50", stem="deep", weights=str(path))
    assert len(first.weights) == len(second.weights)
    for a, b in zip(first.weights, second.weights, strict=True):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _no_download(*args, **kwargs):
    raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")


def test_build_backbone_imagenet_loads_the_file_from_keras_cache(tmp_path, monkeypatch):
    # weights="imagenet" end to end: the md5-checked file in $KERAS_HOME/models is
    # what the backbone loads (a stand-in for Keras' notop file, in its legacy layout).
    application = keras_application("vgg16", seed=11)
    cached = tmp_path / "models" / "vgg16_stand_in_notop.h5"
    cached.parent.mkdir()
    with h5py.File(cached, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, application)
    entry = KerasWeightsFile(cached.name, "https://example.invalid/" + cached.name,
                             hashlib.md5(cached.read_bytes()).hexdigest())
    monkeypatch.setitem(module.KERAS_IMAGENET_WEIGHTS, "vgg16", entry)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", _no_download)
    backbone = build_backbone("vgg16", weights="imagenet")
    x = images(32)
    expected = keras.Model(application.input, application.get_layer("block5_conv3").output)(x)
    np.testing.assert_allclose(numpy_features(backbone, x)["layer4"], expected, rtol=1e-5,
                               atol=1e-6)


def test_build_backbone_imagenet_offline_says_where_keras_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", _no_download)
    with pytest.raises(FileNotFoundError) as error:
        build_backbone("resnet50", weights="imagenet")
    message = str(error.value)
    entry = KERAS_IMAGENET_WEIGHTS["resnet50"]
    assert str(tmp_path / "models" / entry.file_name) in message
    assert entry.origin in message and "$KERAS_HOME/models" in message
    assert "Temporary failure in name resolution" in message
