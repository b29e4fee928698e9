"""ClassifierHead: computation, dropout, config and saving."""

import numpy as np
import tensorflow as tf

from svf_tf.heads.classifier_head import ClassifierHead
from tests.helpers import run_layer_test


def test_head_is_conv_relu_then_1x1_with_bias():
    head = ClassifierHead(2, hidden=6, name="cls")
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype("float32")
    out = head(x, training=False).numpy()
    hidden = tf.nn.relu(tf.nn.conv2d(x, head.conv.kernel, 1, "SAME"))
    expected = tf.nn.conv2d(hidden, head.classifier.kernel, 1, "SAME") + head.classifier.bias
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert not head.conv.use_bias and head.classifier.use_bias


def test_channel_dropout_only_in_training():
    head = ClassifierHead(2, hidden=64, dropout=0.5)
    x = np.random.default_rng(1).normal(size=(1, 3, 3, 4)).astype("float32")
    np.testing.assert_array_equal(head(x, training=False), head(x, training=False))
    difference = np.asarray(head(x, training=True)) - np.asarray(head(x, training=False))
    assert np.abs(difference).max() > 0


def test_batch_norm_variant_and_the_harness():
    # 3x3 conv 4 -> 8 without bias (288), BatchNorm (8 gamma, 8 beta trainable;
    # 8 mean, 8 variance frozen), 1x1 conv 8 -> 16 with bias (144).
    head, _ = run_layer_test(
        lambda: ClassifierHead(16, hidden=8, batch_norm=True, name="cls"), (2, 5, 5, 4),
        expected_trainable=5, expected_non_trainable=2, expected_params=(288 + 16 + 144, 16),
        expected_output_shapes=(2, 5, 5, 16))
    assert head.norm.epsilon == 1e-5 and head.norm.momentum == 0.9


def test_plain_head_harness():
    # 3x3 conv 4 -> 6 without bias (216), 1x1 conv 6 -> 2 with bias (14).
    run_layer_test(lambda: ClassifierHead(2, hidden=6, name="cls"), (2, 5, 5, 4),
                   expected_trainable=3, expected_non_trainable=0, expected_params=(230, 0),
                   expected_output_shapes=(2, 5, 5, 2))
