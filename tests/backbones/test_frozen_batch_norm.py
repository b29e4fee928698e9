"""FrozenBatchNormalization: running statistics always, even when training."""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.backbones import FrozenBatchNormalization
from tests.helpers import run_layer_test


def _frozen_bn(channels=6, epsilon=1e-5, seed=0):
    bn = FrozenBatchNormalization(epsilon=epsilon)
    bn.build((None, None, None, channels))
    rng = np.random.default_rng(seed)
    bn.set_weights([rng.uniform(0.5, 1.5, channels), rng.normal(size=channels),
                    rng.normal(size=channels), rng.uniform(0.5, 1.5, channels)])
    return bn


def _inference_formula(bn, x):
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in bn.get_weights())
    return gamma * (x - mean) / np.sqrt(variance + bn.epsilon) + beta


def test_training_true_uses_running_statistics_and_never_updates_them():
    bn = _frozen_bn()
    bn.trainable = True  # Table 4: gamma/beta train, statistics stay frozen
    before = [w.copy() for w in bn.get_weights()]
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(4, 5, 5, 6)).astype("float32")
    for training in (True, False, None):
        np.testing.assert_allclose(bn(x, training=training), _inference_formula(bn, x),
                                   rtol=1e-5, atol=1e-5)
    for now, then in zip(bn.get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, then)


def test_trainable_flag_selects_gamma_and_beta_only():
    bn = _frozen_bn()
    bn.trainable = True
    assert sorted(v.name for v in bn.trainable_variables) == ["beta", "gamma"]
    bn.trainable = False
    assert bn.trainable_variables == []


def test_gamma_beta_get_gradients_under_training():
    bn = _frozen_bn()
    bn.trainable = True
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 3, 6)), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(bn(x, training=True) ** 2)
    grads = tape.gradient(loss, bn.trainable_variables)
    assert all(g is not None and np.abs(g).sum() > 0 for g in grads)


def test_in_a_model_called_with_training_true():
    inputs = keras.Input((5, 5, 6))
    bn = FrozenBatchNormalization(epsilon=1e-3, name="bn")
    model = keras.Model(inputs, bn(inputs))
    bn.set_weights(_frozen_bn(epsilon=1e-3).get_weights())
    x = np.random.default_rng(3).normal(size=(2, 5, 5, 6)).astype("float32")
    np.testing.assert_allclose(model(x, training=True), _inference_formula(bn, x), rtol=1e-5,
                               atol=1e-5)


def test_layer_harness():
    x = np.random.default_rng(4).normal(size=(2, 4, 4, 6)).astype("float32")
    # gamma and beta train (6 each); the running mean and variance never do.
    bn, (out,) = run_layer_test(_frozen_bn, x, expected_trainable=2, expected_non_trainable=2,
                                expected_params=(12, 12), expected_output_shapes=(2, 4, 4, 6))
    np.testing.assert_allclose(out, _inference_formula(bn, x), rtol=1e-5, atol=1e-5)
    assert FrozenBatchNormalization.from_config(bn.get_config()).epsilon == 1e-5
