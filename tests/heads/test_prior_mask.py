"""The prior mask (cosine similarity, max, min-max normalisation) against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.prior_mask import PriorMask, cosine_prior
from tests.helpers import run_layer_test
from tests.models.numpy_reference import numpy_align_corners


def numpy_prior(query, support):
    """PFENet's prior for one sample: loops over positions, float64."""
    h, w, _ = query.shape
    q = query.reshape(-1, query.shape[-1])
    s = support.reshape(-1, support.shape[-1])
    sim = np.zeros((len(s), len(q)))
    for j, s_j in enumerate(s):
        for p, q_p in enumerate(q):
            sim[j, p] = s_j @ q_p / (np.linalg.norm(s_j) * np.linalg.norm(q_p) + 1e-7)
    prior = sim.max(axis=0)
    prior = (prior - prior.min()) / (prior.max() - prior.min() + 1e-7)
    return prior.reshape(h, w, 1)


def test_one_shot_matches_numpy_non_square_and_masked():
    rng = np.random.default_rng(0)
    query = np.maximum(rng.normal(size=(2, 3, 5, 6)), 0)
    support = np.maximum(rng.normal(size=(2, 4, 4, 6)), 0)
    support[:, :2] = 0  # masked-out support rows are zero vectors
    actual = cosine_prior(tf.constant(query, tf.float32), tf.constant(support, tf.float32))
    for b in range(2):
        np.testing.assert_allclose(actual[b], numpy_prior(query[b], support[b]), atol=1e-5)
    assert actual.numpy().min() >= 0 and actual.numpy().max() <= 1 + 1e-6


def test_layer_masks_the_support_and_keeps_shots_apart():
    rng = np.random.default_rng(1)
    batch, shot = 2, 3
    query = np.maximum(rng.normal(size=(batch, 4, 4, 5)), 0).astype("float32")
    support = np.maximum(rng.normal(size=(batch * shot, 4, 4, 5)), 0).astype("float32")
    # Full-resolution masks (9x9 -> layer4 4x4, align_corners) with a block of foreground.
    masks = np.zeros((batch * shot, 9, 9, 1), "float32")
    for i in range(batch * shot):
        masks[i, i:i + 4, 2:8] = 1
    priors = PriorMask(shot)([query, support, masks]).numpy()
    assert priors.shape == (batch * shot, 4, 4, 1)
    resized = numpy_align_corners(masks, 4, 4)
    for b in range(batch):
        for k in range(shot):
            row = b * shot + k
            expected = numpy_prior(query[b], support[row] * resized[row])
            np.testing.assert_allclose(priors[row], expected, atol=1e-5)


def test_empty_support_mask_gives_zero_prior_and_finite_gradients():
    rng = np.random.default_rng(2)
    query = tf.constant(rng.normal(size=(1, 3, 3, 4)), tf.float32)
    support = tf.constant(rng.normal(size=(2, 3, 3, 4)), tf.float32)
    masks = tf.zeros((2, 9, 9, 1))
    with tf.GradientTape() as tape:
        tape.watch([query, support])
        priors = PriorMask(2)([query, support, masks])
        total = tf.reduce_sum(priors * rng.normal(size=(2, 3, 3, 1)))
    grads = tape.gradient(total, [query, support])
    np.testing.assert_array_equal(priors.numpy(), 0.0)
    assert all(np.isfinite(g.numpy()).all() for g in grads)


def test_zero_query_vector_gives_no_nan():
    rng = np.random.default_rng(4)
    query = rng.uniform(size=(1, 2, 2, 3)).astype("float32")
    query[0, 0, 0] = 0
    support = rng.uniform(size=(1, 2, 2, 3)).astype("float32")
    q = tf.constant(query)
    with tf.GradientTape() as tape:
        tape.watch(q)
        prior = cosine_prior(q, tf.constant(support))
        total = tf.reduce_sum(prior * rng.normal(size=(1, 2, 2, 1)))
    assert np.isfinite(prior.numpy()).all()
    grad = tape.gradient(total, q).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_bad_shot_and_layer_harness():
    with pytest.raises(ValueError, match="shot=0"):
        PriorMask(0)
    rng = np.random.default_rng(3)
    query = rng.uniform(size=(1, 3, 3, 4)).astype("float32")
    support = rng.uniform(size=(2, 3, 3, 4)).astype("float32")
    masks = rng.integers(0, 2, size=(2, 9, 9, 1)).astype("float32")
    _, (priors,) = run_layer_test(lambda: PriorMask(2, name="prior"), [query, support, masks],
                                  expected_trainable=0, expected_non_trainable=0,
                                  expected_output_shapes=(2, 3, 3, 1))
    resized = numpy_align_corners(masks, 3, 3)
    for row in range(2):
        np.testing.assert_allclose(priors[row], numpy_prior(query[0], support[row] * resized[row]),
                                   atol=1e-5)
