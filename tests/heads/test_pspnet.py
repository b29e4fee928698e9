"""PSPNet: the PPM and the stage-1 base-learner model."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.ppm import PyramidPooling
from svf_tf.heads.pspnet import PSPNetHead, build_pspnet_model
from svf_tf.models.losses import masked_cross_entropy
from svf_tf.ops.adaptive_avg_pool import adaptive_average_pool
from svf_tf.ops.align_corners_resize import resize_align_corners
from tests.helpers import assert_keras_file_round_trip, run_layer_test
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


def test_ppm_harness():
    # Two bins, 8 // 2 = 4 channels each: a bias-free 1x1 conv 8 -> 4 (32) and a
    # BatchNorm (4 gamma, 4 beta trainable; 4 mean, 4 variance frozen) per bin.
    run_layer_test(lambda: PyramidPooling(8, bins=(1, 3), name="p"), (2, 7, 7, 8),
                   expected_trainable=6, expected_non_trainable=4,
                   expected_params=(2 * (32 + 8), 2 * 8), expected_output_shapes=(2, 7, 7, 16))


def test_head_harness():
    # PPM: four bins of 8 // 4 = 2 channels (1x1 conv 16 + BN 4 + 4 frozen each);
    # classifier: 3x3 conv 16 -> 512 without bias, BN 512, 1x1 conv 512 -> 5 with bias.
    trainable = 4 * (16 + 4) + 9 * 16 * 512 + 2 * 512 + 512 * 5 + 5
    run_layer_test(lambda: PSPNetHead(8, 5, name="h"), (2, 7, 7, 8),
                   expected_trainable=4 * 3 + 5, expected_non_trainable=4 * 2 + 2,
                   expected_params=(trainable, 4 * 4 + 2 * 512),
                   expected_output_shapes=(2, 7, 7, 5))


def test_stage1_model_keras_file(tmp_path):
    model = build_pspnet_model(fake_backbone("vgg", "freeze"), 16)
    image = np.random.default_rng(3).normal(size=(1, 17, 17, 3)).astype("float32")
    assert_keras_file_round_trip(model, image, tmp_path / "m.keras")
