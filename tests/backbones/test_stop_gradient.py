"""StopGradient: identity forward, no gradient backward."""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.backbones import StopGradient
from tests.helpers import run_layer_test


def test_identity_forward_and_no_gradient():
    dense = keras.layers.Dense(3)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 4)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        hidden = dense(x)
        stopped = StopGradient()(hidden)
        loss = tf.reduce_sum(stopped ** 2)
    np.testing.assert_array_equal(stopped, hidden)
    assert tape.gradient(loss, x) is None
    assert all(g is None for g in tape.gradient(loss, dense.trainable_variables))


def test_layer_harness():
    x = np.random.default_rng(1).normal(size=(1, 3, 3, 2)).astype("float32")
    _, (out,) = run_layer_test(lambda: StopGradient(name="layer1_stop_gradient"), x,
                               expected_trainable=0, expected_non_trainable=0,
                               expected_output_shapes=(1, 3, 3, 2))
    np.testing.assert_array_equal(out, x)
