"""TorchBatchNormalization against PyTorch's nn.BatchNorm2d in train and eval mode."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.backbones import TorchBatchNormalization
from tests.helpers import run_layer_test, two_replica_strategy

C = 6


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _layers(torch, seed=0, epsilon=1e-5):
    """A frozen-affine Keras layer and an nn.BatchNorm2d with the same random state."""
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 1.5, C), rng.normal(size=C), rng.normal(size=C),
               rng.uniform(0.5, 1.5, C)]
    keras_bn = TorchBatchNormalization(epsilon=epsilon)
    keras_bn.build((None, None, None, C))
    keras_bn.set_weights(weights)
    keras_bn.trainable = False  # gamma/beta frozen, as in PFENet's backbone
    torch_bn = torch.nn.BatchNorm2d(C, eps=epsilon)  # momentum 0.1
    with torch.no_grad():
        for tensor, value in zip((torch_bn.weight, torch_bn.bias, torch_bn.running_mean,
                                  torch_bn.running_var), weights, strict=True):
            tensor.copy_(torch.from_numpy(value))
    return keras_bn, torch_bn


def _batch(seed, shape=(4, 5, 7, C)):
    return np.random.default_rng(seed).normal(3.0, 2.0, size=shape).astype("float32")


def _torch_forward(bn, x):
    import torch

    with torch.no_grad():
        return bn(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()


def _assert_statistics_equal(keras_bn, torch_bn):
    np.testing.assert_allclose(keras_bn.moving_mean.numpy(), torch_bn.running_mean.numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras_bn.moving_variance.numpy(), torch_bn.running_var.numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.torch
def test_training_matches_torch_train_mode_after_one_and_three_updates(torch):
    keras_bn, torch_bn = _layers(torch)
    torch_bn.train()
    initial_variance = keras_bn.moving_variance.numpy().copy()
    for step in range(3):
        x = _batch(seed=step)
        np.testing.assert_allclose(keras_bn(x, training=True), _torch_forward(torch_bn, x),
                                   rtol=1e-5, atol=1e-5)
        _assert_statistics_equal(keras_bn, torch_bn)
        if step == 0:
            # Keras' own rule (biased variance) is 0.1 * var / (n - 1) ~ 3e-3 away.
            biased_rule = 0.9 * initial_variance + 0.1 * x.reshape(-1, C).var(axis=0)
            assert np.abs(keras_bn.moving_variance.numpy() - biased_rule).min() > 1e-3


@pytest.mark.torch
def test_inference_uses_the_running_statistics_like_torch_eval(torch):
    keras_bn, torch_bn = _layers(torch, seed=1)
    torch_bn.train()
    keras_bn(_batch(seed=5), training=True)
    _torch_forward(torch_bn, _batch(seed=5))
    torch_bn.eval()
    x = _batch(seed=6)
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in keras_bn.get_weights())
    formula = gamma * (x - mean) / np.sqrt(variance + keras_bn.epsilon) + beta
    before = [w.copy() for w in keras_bn.get_weights()]
    for training in (False, None):
        y = keras_bn(x, training=training)
        np.testing.assert_allclose(y, formula, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(y, _torch_forward(torch_bn, x), rtol=1e-5, atol=1e-5)
    for now, then in zip(keras_bn.get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, then)


def test_gamma_beta_train_only_when_trainable():
    keras_bn = TorchBatchNormalization(epsilon=1e-5)
    keras_bn.build((None, None, None, C))
    keras_bn.trainable = False
    assert keras_bn.trainable_variables == []
    keras_bn.trainable = True
    assert sorted(v.name for v in keras_bn.trainable_variables) == ["beta", "gamma"]
    x = tf.constant(_batch(seed=2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(keras_bn(x, training=True) ** 3)
    assert all(g is not None for g in tape.gradient(loss, keras_bn.trainable_variables))
    assert {(v.aggregation, v.synchronization) for v in keras_bn.non_trainable_variables} == {
        ("mean", "on_read")}


def test_layer_harness_config_and_keras_file():
    layer, _ = run_layer_test(lambda: TorchBatchNormalization(epsilon=1e-5, name="bn"),
                              (2, 4, 4, C), expected_trainable=2, expected_non_trainable=2)
    assert layer.get_config()["momentum"] == 0.9


@pytest.mark.parametrize("option", ["renorm", "synchronized"])
def test_unsupported_options_raise(option):
    with pytest.raises(ValueError, match=f"{option}=True is not supported"):
        TorchBatchNormalization(**{option: True})


def test_replica_copies_are_saved_and_restored_as_their_mean(tmp_path):
    """Each replica updates its own copy; checkpoints hold (and restore) their mean."""
    def make():
        inputs = keras.Input((4, 4, C))
        bn = TorchBatchNormalization(name="bn")
        bn.trainable = False
        return keras.Model(inputs, bn(inputs))

    strategy = two_replica_strategy()
    with strategy.scope():
        model = make()
    x = _batch(seed=7, shape=(2, 4, 4, C))

    @tf.function
    def step(batch):
        strategy.run(lambda b: model(b, training=True), args=(batch,))

    for batch in strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(x).batch(2)):
        step(batch)
    variance = model.get_layer("bn").moving_variance
    copies = [0.9 + 0.1 * x[i].reshape(-1, C).var(axis=0, ddof=1) for i in range(2)]
    for copy, expected in zip(strategy.experimental_local_results(variance.value), copies,
                              strict=True):
        np.testing.assert_allclose(copy.numpy(), expected, rtol=1e-5)
    path = tf.train.Checkpoint(variables=list(model.variables)).save(str(tmp_path / "ckpt"))
    restored = make()
    tf.train.Checkpoint(variables=list(restored.variables)).restore(path).assert_consumed()
    np.testing.assert_allclose(restored.get_layer("bn").moving_variance.numpy(),
                               np.mean(copies, axis=0), rtol=1e-5)
