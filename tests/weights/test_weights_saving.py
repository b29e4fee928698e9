"""Keras weights files are written whole or not at all (`svf_tf.weights.saving`).

A failure is injected into `save_weights` after it has written part of the
file (a disk that fills up, or Ctrl-C): the previous files must keep their
exact bytes, no temporary may be left, and the OSError names the target.
"""

import errno
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from svf_tf.weights.base_learner import (
    BACKBONE_FILE,
    BASE_LEARNER_FILE,
    save_stage1_weights,
)
from svf_tf.weights.saving import save_weights_files

OLD = b"previous weights\n"


def stage1_like_model(seed=0):
    """A conv "backbone" sub-model (named like the real ones) under a 1x1 conv head."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 3))
    backbone = keras.Model(image, keras.layers.Conv2D(4, 3, name="conv")(image),
                           name="tiny_backbone")
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(backbone(inputs)),
                       name="tiny_pspnet")


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write_old(*paths):
    for path in paths:
        with open(path, "wb") as f:
            f.write(OLD)


def _fail_after_writing_part(monkeypatch, error, when=lambda path: True):
    """`save_weights` writes the real file, cuts it in half, then raises `error`."""
    real_save = keras.Model.save_weights
    seen = []

    def save_then_fail(self, filepath, *args, **kwargs):
        seen.append(filepath)
        real_save(self, filepath, *args, **kwargs)
        if when(filepath):
            with open(filepath, "r+b") as f:
                f.truncate(os.path.getsize(filepath) // 2)
            raise error

    monkeypatch.setattr(keras.Model, "save_weights", save_then_fail)
    return seen


def test_round_trip_through_a_hidden_temporary(tmp_path, monkeypatch):
    model = stage1_like_model(0)
    expected = [w.copy() for w in model.get_weights()]
    real_save = keras.Model.save_weights
    seen = []

    def spy(self, filepath, *args, **kwargs):
        seen.append(filepath)
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", spy)
    path = str(tmp_path / "model.weights.h5")
    _write_old(path)
    save_weights_files((model, path))
    (temporary,) = seen
    assert os.path.dirname(temporary) == str(tmp_path)
    assert os.path.basename(temporary).startswith(".") and temporary.endswith(".weights.h5")
    assert os.listdir(tmp_path) == ["model.weights.h5"]
    other = stage1_like_model(1)
    other.load_weights(path)
    for loaded, saved in zip(other.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(loaded, saved)


def test_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "model.weights.h5")
    _write_old(path)
    _fail_after_writing_part(monkeypatch, OSError(errno.ENOSPC, "h5py: write failed"))
    with pytest.raises(OSError) as error:
        save_weights_files((stage1_like_model(), path))
    assert error.value.errno == errno.ENOSPC and error.value.filename == path
    assert _read(path) == OLD and os.listdir(tmp_path) == ["model.weights.h5"]


def test_ctrl_c_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    _fail_after_writing_part(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        save_weights_files((stage1_like_model(), str(tmp_path / "model.weights.h5")))
    assert os.listdir(tmp_path) == []


def test_suffix_is_required(tmp_path):
    with pytest.raises(ValueError, match=r"'.*model\.h5' must end in '\.weights\.h5'"):
        save_weights_files((stage1_like_model(), str(tmp_path / "model.h5")))


def test_stage1_pair_is_written_and_reads_back(tmp_path):
    model = stage1_like_model(0)
    expected = [w.copy() for w in model.get_weights()]
    backbone_expected = [w.copy() for w in model.get_layer("tiny_backbone").get_weights()]
    paths = save_stage1_weights(model, str(tmp_path / "best"))
    assert paths == (str(tmp_path / "best" / BASE_LEARNER_FILE),
                     str(tmp_path / "best" / BACKBONE_FILE))
    assert sorted(os.listdir(tmp_path / "best")) == sorted([BACKBONE_FILE, BASE_LEARNER_FILE])
    other = stage1_like_model(1)
    other.load_weights(paths[0])
    for loaded, saved in zip(other.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(loaded, saved)
    backbone = stage1_like_model(2).get_layer("tiny_backbone")
    backbone.load_weights(paths[1])
    for loaded, saved in zip(backbone.get_weights(), backbone_expected, strict=True):
        np.testing.assert_array_equal(loaded, saved)


def test_stage1_pair_is_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    directory = tmp_path / "best"
    directory.mkdir()
    paths = [str(directory / BASE_LEARNER_FILE), str(directory / BACKBONE_FILE)]
    _write_old(*paths)
    # The base learner is written fine; the disk fills up during the backbone.
    seen = _fail_after_writing_part(monkeypatch, OSError(errno.ENOSPC, "h5py: write failed"),
                                    when=lambda path: BACKBONE_FILE in path)
    with pytest.raises(OSError) as error:
        save_stage1_weights(stage1_like_model(), str(directory))
    assert len(seen) == 2
    assert error.value.errno == errno.ENOSPC and error.value.filename == paths[1]
    assert [_read(path) for path in paths] == [OLD, OLD]
    assert sorted(os.listdir(directory)) == sorted([BACKBONE_FILE, BASE_LEARNER_FILE])


@pytest.mark.slow  # a subprocess with a file-size limit: a real h5py write failure
def test_a_real_write_failure_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.weights.h5"
    target.write_bytes(OLD)
    script = textwrap.dedent("""
        import resource, signal, sys
        import keras
        from svf_tf.weights.saving import save_weights_files
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(4096)])  # 1 MB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        try:
            save_weights_files((model, sys.argv[1]))
        except OSError as error:
            print("OSError", error.errno, error.filename)
    """)
    result = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True,
                            text=True, timeout=300,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"OSError {errno.EFBIG} {target}" in result.stdout
    assert target.read_bytes() == OLD and os.listdir(tmp_path) == ["model.weights.h5"]
