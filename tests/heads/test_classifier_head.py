"""ClassifierHead and BroadcastLike: computation, dropout, config and saving."""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.heads.classifier_head import ClassifierHead
from svf_tf.ops.broadcast_like import BroadcastLike
from tests.helpers import assert_config_round_trip


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


def test_batch_norm_variant_and_config(tmp_path):
    head = ClassifierHead(16, hidden=8, batch_norm=True, name="cls")
    assert_config_round_trip(head)
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, head(inputs))
    assert head.norm.epsilon == 1e-5 and head.norm.momentum == 0.9
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 4)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "m.keras")(x), model(x))


def test_broadcast_like_tiles_over_the_grid(tmp_path):
    vector = np.random.default_rng(3).normal(size=(2, 1, 1, 3)).astype("float32")
    like = np.zeros((2, 4, 5, 7), "float32")
    out = BroadcastLike()([vector, like]).numpy()
    np.testing.assert_array_equal(out, np.broadcast_to(vector, (2, 4, 5, 3)))
    assert_config_round_trip(BroadcastLike(name="tile"))
    ins = [keras.Input((1, 1, 3)), keras.Input((None, None, 7))]
    model = keras.Model(ins, BroadcastLike()(ins))
    assert model.output.shape == (None, None, None, 3)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "m.keras")([vector, like]),
                                  out)
