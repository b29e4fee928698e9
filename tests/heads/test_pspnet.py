"""PSPNet: the PPM and the stage-1 base-learner model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.ppm import PyramidPooling
from svf_tf.heads.pspnet import PSPNetHead, build_pspnet_model
from svf_tf.models.losses import masked_cross_entropy
from svf_tf.ops.adaptive_avg_pool import adaptive_average_pool
from svf_tf.ops.align_corners_resize import resize_align_corners
from tests.helpers import assert_config_round_trip
from tests.models.fake_backbone import fake_backbone


def test_ppm_branches():
    ppm = PyramidPooling(8, name="ppm")
    x = np.random.default_rng(0).uniform(size=(2, 7, 7, 8)).astype("float32")
    out = ppm(x, training=False).numpy()
    assert out.shape == (2, 7, 7, 8 + 4 * 2)
    np.testing.assert_array_equal(out[..., :8], x)
    for index, pyramid_bin in enumerate((1, 2, 3, 6)):
        pooled = adaptive_average_pool(x, (pyramid_bin, pyramid_bin))
        branch = tf.nn.relu(ppm.norms[index](ppm.convs[index](pooled), training=False))
        expected = resize_align_corners(branch, (7, 7)).numpy()
        np.testing.assert_allclose(out[..., 8 + 2 * index:10 + 2 * index], expected,
                                   rtol=1e-5, atol=1e-6)
    assert all(not conv.use_bias for conv in ppm.convs)


def test_head_channels_and_bn_epsilon():
    head = PSPNetHead(16, 16, name="head")
    out = head(np.zeros((1, 5, 5, 16), "float32"))
    assert out.shape == (1, 5, 5, 16)
    assert head.ppm.reduction_dim == 4 and head.cls.hidden == 512
    assert all(n.epsilon == 1e-5 for n in head.ppm.norms) and head.cls.norm.epsilon == 1e-5
    with pytest.raises(ValueError, match="made for 16 input channels"):
        PSPNetHead(16, 16)(np.zeros((1, 5, 5, 8), "float32"))


def test_stage1_model_trains_backbone_and_head():
    backbone = fake_backbone("resnet", "full")
    model = build_pspnet_model(backbone, 16)
    image = np.random.default_rng(1).normal(size=(2, 17, 17, 3)).astype("float32")
    labels = np.random.default_rng(2).integers(0, 16, size=(2, 17, 17))
    labels[0, :3] = 255
    with tf.GradientTape() as tape:
        logits = model(image, training=True)["logits"]
        loss = masked_cross_entropy(logits, labels)
    assert logits.shape == (2, 17, 17, 16) and np.isfinite(float(loss))
    grads = tape.gradient(loss, model.trainable_variables)
    paths = [v.path for v in model.trainable_variables]
    assert any(p.startswith("pspnet_head") for p in paths)
    assert sum(p.startswith("stage") for p in paths) == 10  # 5 convs: kernel and bias
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in grads)


def test_config_and_keras_file(tmp_path):
    assert_config_round_trip(PyramidPooling(8, bins=(1, 3), name="p"))
    assert_config_round_trip(PSPNetHead(8, 61, name="h"))
    model = build_pspnet_model(fake_backbone("vgg", "freeze"), 16)
    image = np.random.default_rng(3).normal(size=(1, 17, 17, 3)).astype("float32")
    expected = model(image)["logits"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(image)["logits"], expected)
