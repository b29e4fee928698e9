"""TrainingCheckpoint restores every variable, and refuses another architecture."""

import keras
import numpy as np
import pytest

from svf_tf.models.build_model import build_fsss_model
from svf_tf.runs.checkpointing import TrainingCheckpoint


def baseline(seed, backbone="vgg16"):
    keras.utils.set_random_seed(seed)
    return build_fsss_model("baseline", backbone, 1, image_size=(33, 33))


def test_every_variable_comes_back(tmp_path):
    saved = baseline(1)
    rng = np.random.default_rng(0)
    for variable in saved.variables:  # weights, BN statistics, RNG states alike
        value = variable.numpy()
        variable.assign((value + rng.integers(1, 5, value.shape)).astype(value.dtype))
    checkpoint = TrainingCheckpoint(str(tmp_path), saved)
    checkpoint.step.assign(7)
    path = checkpoint.save(epoch=2, step_in_epoch=3)

    restored = baseline(2)
    other = TrainingCheckpoint(str(tmp_path / "other"), restored)
    other.restore(path)
    assert (int(other.step.numpy()), int(other.epoch.numpy())) == (7, 2)
    for a, b in zip(saved.variables, restored.variables, strict=True):
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=a.path)


def test_another_architecture_is_refused(tmp_path):
    path = TrainingCheckpoint(str(tmp_path), baseline(1)).save(epoch=0, step_in_epoch=0)
    keras.utils.set_random_seed(3)
    pfenet = build_fsss_model("pfenet", "vgg16", 1, image_size=(33, 33))
    with pytest.raises(ValueError, match="does not match this model.*--method"):
        TrainingCheckpoint(str(tmp_path / "p"), pfenet).restore(path)
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        TrainingCheckpoint(str(tmp_path / "p"), pfenet).restore(str(tmp_path / "nothing"))
