"""The converter's `.weights.h5` output is written whole or not at all.

The checkpoint reader and the target model are replaced by a two-layer
VGG16-BN stand-in (as in test_conversion_errors), so no PyTorch is needed.
A failure injected into `save_weights` after part of the file is written
must leave the previous output byte for byte, and no temporary.
"""

import errno
import os

import keras
import numpy as np
import pytest

from svf_tf.torch_import import convert as convert_module
from svf_tf.torch_import import convert_checkpoint

OLD = b"previous converted weights\n"


def first_vgg_block():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="block1_conv1")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-5, name="block1_bn1")(x)
    return keras.Model(inputs, x, name="tiny_vgg")


def first_vgg_block_state():
    rng = np.random.default_rng(0)
    return {"features.0.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
            "features.0.bias": rng.normal(size=4).astype(np.float32),
            "features.1.weight": rng.uniform(0.5, 1, 4).astype(np.float32),
            "features.1.bias": rng.normal(size=4).astype(np.float32),
            "features.1.running_mean": rng.normal(size=4).astype(np.float32),
            "features.1.running_var": rng.uniform(0.5, 2, 4).astype(np.float32),
            "features.1.num_batches_tracked": np.array(10)}


@pytest.fixture
def tiny_conversion(monkeypatch):
    """convert_checkpoint reads `first_vgg_block_state` into `first_vgg_block`."""
    state = first_vgg_block_state()
    monkeypatch.setattr(convert_module, "load_checkpoint", lambda path: dict(state))

    def build(target, **kwargs):
        model = first_vgg_block()
        return model, model

    monkeypatch.setattr(convert_module, "build_target_model", build)
    return state


def test_output_is_written_and_loads(tiny_conversion, tmp_path):
    output = tmp_path / "vgg.weights.h5"
    output.write_bytes(OLD)
    convert_checkpoint(tmp_path / "x.pth", "vgg16_bn", output)
    assert os.listdir(tmp_path) == ["vgg.weights.h5"]
    model = first_vgg_block()
    model.load_weights(output)
    # PyTorch's OIHW kernel is Keras' HWIO.
    np.testing.assert_array_equal(model.get_layer("block1_conv1").kernel.numpy(),
                                  tiny_conversion["features.0.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.get_layer("block1_bn1").moving_variance.numpy(),
                                  tiny_conversion["features.1.running_var"])


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "h5py: write failed"),
                                   KeyboardInterrupt()], ids=["full_disk", "ctrl_c"])
def test_failed_write_keeps_the_previous_output(tiny_conversion, tmp_path, monkeypatch, error):
    real_save = keras.Model.save_weights

    def save_part_then_fail(self, filepath, *args, **kwargs):
        real_save(self, filepath, *args, **kwargs)
        with open(filepath, "r+b") as f:
            f.truncate(os.path.getsize(filepath) // 2)
        raise error

    monkeypatch.setattr(keras.Model, "save_weights", save_part_then_fail)
    output = tmp_path / "vgg.weights.h5"
    output.write_bytes(OLD)
    with pytest.raises(type(error)) as raised:
        convert_checkpoint(tmp_path / "x.pth", "vgg16_bn", output)
    if isinstance(error, OSError):
        assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(output)
    assert output.read_bytes() == OLD and os.listdir(tmp_path) == ["vgg.weights.h5"]
