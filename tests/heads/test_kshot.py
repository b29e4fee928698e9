"""Combining shots: sum / mean / BAM's learned weights."""

import numpy as np
import pytest

from svf_tf.heads.kshot_reduce import KShotReduce
from svf_tf.heads.kshot_weighting import KShotWeighting
from tests.helpers import run_layer_test


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_sum_and_mean_over_episode_major_rows(mode):
    rng = np.random.default_rng(0)
    batch, shot = 2, 3
    x = rng.normal(size=(batch * shot, 4, 4, 2)).astype("float32")
    out = KShotReduce(shot, mode)(x).numpy()
    per_episode = x.reshape(batch, shot, 4, 4, 2)
    expected = per_episode.sum(1) if mode == "sum" else per_episode.mean(1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_weighted_sum():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 1, 1, 3)).astype("float32")
    weights = np.array([[0.25, 0.75], [1.0, 0.0]], "float32")
    out = KShotReduce(2, "weighted")([x, weights]).numpy()
    np.testing.assert_allclose(out[0], 0.25 * x[0] + 0.75 * x[1], rtol=1e-6)
    np.testing.assert_allclose(out[1], x[2], rtol=1e-6)


def test_one_shot_is_identity_for_every_mode():
    x = np.random.default_rng(2).normal(size=(2, 3, 3, 1)).astype("float32")
    for mode in ("sum", "mean"):
        np.testing.assert_array_equal(KShotReduce(1, mode)(x), x)
    np.testing.assert_array_equal(KShotReduce(1, "weighted")([x, np.ones((2, 1))]), x)


def numpy_kshot_weights(est, w1, b1, w2, b2):
    """BAM: sort ascending, Dense-ReLU-Dense, un-sort, softmax over shots."""
    order = np.argsort(est, axis=1, kind="stable")
    ascending = np.take_along_axis(est, order, axis=1)
    weights = np.maximum(ascending @ w1 + b1, 0) @ w2 + b2
    unsorted = np.empty_like(weights)
    np.put_along_axis(unsorted, order, weights, axis=1)
    e = np.exp(unsorted - unsorted.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_learned_weights_match_numpy_and_follow_the_shots():
    shot = 4
    layer = KShotWeighting(shot)
    rng = np.random.default_rng(3)
    est = rng.uniform(size=(2, shot)).astype("float32")
    layer(est.reshape(-1, 1))
    # Weights that keep the ReLU active, so the sort matters.
    layer.hidden.kernel.assign(rng.uniform(0.5, 1.0, (shot, 2)))
    layer.hidden.bias.assign([0.1, 0.2])
    layer.output_dense.kernel.assign(rng.normal(size=(2, shot)))
    out = layer(est.reshape(-1, 1)).numpy()
    params = [v.numpy() for v in (layer.hidden.kernel, layer.hidden.bias,
                                  layer.output_dense.kernel, layer.output_dense.bias)]
    np.testing.assert_allclose(out, numpy_kshot_weights(est, *params), rtol=1e-5)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-6)
    # Permuting the shots permutes their weights the same way.
    perm = np.array([2, 0, 3, 1])
    permuted = layer(est[:, perm].reshape(-1, 1)).numpy()
    np.testing.assert_allclose(permuted, out[:, perm], rtol=1e-5)


def test_one_shot_weight_is_one_and_has_no_variables():
    layer = KShotWeighting(1)
    out = layer(np.array([[0.3], [0.9]], "float32"))
    np.testing.assert_array_equal(out, np.ones((2, 1)))
    assert not layer.weights


def test_bad_options_raise():
    with pytest.raises(ValueError, match="mode='max'"):
        KShotReduce(2, "max")
    with pytest.raises(ValueError, match="shot"):
        KShotWeighting(0)


def test_reduce_harness():
    x = np.random.default_rng(4).normal(size=(6, 4, 4, 2)).astype("float32")
    _, (out,) = run_layer_test(lambda: KShotReduce(3, "mean", name="r"), x,
                               expected_trainable=0, expected_non_trainable=0,
                               expected_output_shapes=(2, 4, 4, 2))
    np.testing.assert_allclose(out, x.reshape(2, 3, 4, 4, 2).mean(1), rtol=1e-6)


def test_weighting_harness():
    est = np.random.default_rng(4).uniform(size=(6, 1)).astype("float32")
    # Dense(3 -> 2) and Dense(2 -> 3), both with bias: 8 + 9 values.
    layer, (out,) = run_layer_test(lambda: KShotWeighting(3, name="kshot_rw"), est,
                                   expected_trainable=4, expected_non_trainable=0,
                                   expected_params=(17, 0), expected_output_shapes=(2, 3))
    params = [v.numpy() for v in (layer.hidden.kernel, layer.hidden.bias,
                                  layer.output_dense.kernel, layer.output_dense.bias)]
    np.testing.assert_allclose(out, numpy_kshot_weights(est.reshape(2, 3), *params), rtol=1e-5)
