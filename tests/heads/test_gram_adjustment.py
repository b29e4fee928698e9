"""BAM's Gram-matrix factor against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.gram_adjustment import GramAdjustment, cosine_gram, gram_distance
from tests.helpers import run_layer_test


def numpy_gram(features):
    """C x C cosine Gram of one [H, W, C] map, each channel a vector over positions."""
    f = features.reshape(-1, features.shape[-1]).T  # [C, N]
    norms = np.linalg.norm(f, axis=1)
    return (f @ f.T) / (np.outer(norms, norms) + 1e-7)


def numpy_est_val(query, support):
    diff = numpy_gram(query) - numpy_gram(support)
    return np.sqrt((diff ** 2).sum()) / query.shape[-1]


def test_gram_and_distance_match_numpy():
    rng = np.random.default_rng(0)
    query = np.maximum(rng.normal(size=(2, 4, 5, 6)), 0)
    support = np.maximum(rng.normal(size=(2, 3, 3, 6)), 0)
    gram = cosine_gram(tf.constant(query, tf.float32)).numpy()
    for b in range(2):
        np.testing.assert_allclose(gram[b], numpy_gram(query[b]), atol=1e-6)
    est = gram_distance(tf.constant(query, tf.float32), tf.constant(support, tf.float32))
    np.testing.assert_allclose(est, [numpy_est_val(query[b], support[b]) for b in range(2)],
                               rtol=1e-5)


def test_layer_gives_one_value_per_shot():
    rng = np.random.default_rng(1)
    batch, shot = 2, 3
    query = np.maximum(rng.normal(size=(batch, 4, 4, 5)), 0).astype("float32")
    support = np.maximum(rng.normal(size=(batch * shot, 4, 4, 5)), 0).astype("float32")
    est = GramAdjustment(shot)([query, support]).numpy()
    assert est.shape == (batch * shot, 1)
    expected = [numpy_est_val(query[r // shot], support[r]) for r in range(batch * shot)]
    np.testing.assert_allclose(est[:, 0], expected, rtol=1e-5)


def test_identical_images_and_dead_channels_give_finite_gradients():
    rng = np.random.default_rng(2)
    features = np.maximum(rng.normal(size=(1, 3, 3, 4)), 0).astype("float32")
    features[..., 1] = 0  # a dead ReLU channel: zero norm
    x = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(x)
        est = gram_distance(x, x)
    assert float(est[0]) == 0.0
    assert np.isfinite(tape.gradient(est, x).numpy()).all()


def test_bad_shot_and_layer_harness():
    with pytest.raises(ValueError, match="shot"):
        GramAdjustment(-1)
    rng = np.random.default_rng(3)
    query = rng.uniform(size=(1, 3, 3, 3)).astype("float32")
    support = rng.uniform(size=(2, 3, 3, 3)).astype("float32")
    _, (est,) = run_layer_test(lambda: GramAdjustment(2, name="gram"), [query, support],
                               expected_trainable=0, expected_non_trainable=0,
                               expected_output_shapes=(2, 1))
    np.testing.assert_allclose(est[:, 0], [numpy_est_val(query[0], s) for s in support],
                               rtol=1e-4)
