"""BCPT's equations against NumPy written here, on hand-made embeddings (paper Sec. 2.1-2.3)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.bcpt import clustering, guidance, losses

# Six background embeddings (rows, D = 3) and K = 3 centres (columns).
EMBEDDINGS = np.array([[2.0, 0.1, 0.0], [1.5, -0.2, 0.3], [0.1, 1.0, 0.0],
                       [0.0, 2.0, 0.5], [1.0, 0.9, 0.0], [0.2, 0.3, 0.1]], np.float32)
CENTRES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32).T * \
    np.array([[1.0, 0.8, 2.0]], np.float32)  # [D, K], columns of different norms


def np_unit_columns(m):
    n = np.linalg.norm(m, axis=0, keepdims=True)
    return np.where(n > 0, m / np.where(n > 0, n, 1), m)


def np_assign(embeddings, centres):
    s = centres.T @ embeddings.T  # S = P^T I_bg, [K, N]
    return s.argmax(axis=0)


def test_assignment_aggregation_and_momentum_update_eq1():
    assignment = clustering.assign(EMBEDDINGS, CENTRES).numpy()
    expected = np_assign(EMBEDDINGS, CENTRES)
    # By hand: <i, p> for pixel 0 = (2, 0.08, 0) -> centre 0; pixel 3 = (0, 1.6, 1) -> centre 1.
    np.testing.assert_array_equal(assignment, expected)
    assert assignment[0] == 0 and assignment[3] == 1
    a = np.zeros((3, len(EMBEDDINGS)))
    a[expected, np.arange(len(EMBEDDINGS))] = 1  # A, [K, N]
    p_hat, counts = clustering.aggregate(EMBEDDINGS, assignment, 3)
    np.testing.assert_allclose(p_hat, EMBEDDINGS.T @ a.T, rtol=1e-6)  # P_hat = I_bg A^T
    np.testing.assert_array_equal(counts, a.sum(axis=1))
    mu = 0.9
    updated = clustering.momentum_update(CENTRES, p_hat, counts, mu).numpy()
    for k in range(3):
        if counts[k]:
            p = CENTRES[:, k] / np.linalg.norm(CENTRES[:, k])
            q = p_hat.numpy()[:, k] / np.linalg.norm(p_hat.numpy()[:, k])
            np.testing.assert_allclose(updated[:, k], mu * p + (1 - mu) * q, rtol=1e-6)
    # Centre 2 (z) wins no pixel: it is left exactly as it was, norm 2 included.
    assert counts[2] == 0
    np.testing.assert_array_equal(updated[:, 2], CENTRES[:, 2])


def test_no_gradient_reaches_the_centres_through_the_update():
    centres = tf.Variable(CENTRES)
    with tf.GradientTape() as tape:
        p_hat, counts = clustering.aggregate(EMBEDDINGS, clustering.assign(EMBEDDINGS, centres), 3)
        out = tf.reduce_sum(clustering.momentum_update(centres, p_hat, counts, 0.5))
    assert tape.gradient(out, centres) is None


def np_log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


W = np.array([[0.5, -1.0], [0.2, 0.3], [-0.4, 0.8]], np.float32)  # [D, C = 2]
LABELS = np.array([0, 1, 0, 2, 255, 0], np.int32)


@pytest.mark.parametrize("softmax", losses.SOFTMAX_MODES)
def test_bm_and_base_losses_eq2_eq3_values_and_gradients(softmax):
    assignment = np_assign(EMBEDDINGS, CENTRES)
    # NumPy: the losses and their analytic gradient d(sum)/d(embedding).
    class_scores, centre_scores = EMBEDDINGS @ W, EMBEDDINGS @ CENTRES
    base_np, bg_np = np.zeros(6), np.zeros(6)
    grad_np = np.zeros_like(EMBEDDINGS)
    for n, label in enumerate(LABELS):
        if label == 255:
            continue
        if softmax == "joint":
            vectors, scores = np.concatenate([W, CENTRES], 1), np.concatenate(
                [class_scores[n], centre_scores[n]])
            target = label - 1 if label else 2 + assignment[n]
        elif label:
            vectors, scores, target = W, class_scores[n], label - 1
        else:
            vectors, scores, target = CENTRES, centre_scores[n], assignment[n]
        log_p = np_log_softmax(scores)
        (base_np if label else bg_np)[n] = -log_p[target]
        weight = 0.3 if label == 0 else 1.0  # d/di of L_base + 0.3 * L_BM
        onehot = np.eye(len(scores))[target]
        grad_np[n] = weight * vectors @ (np.exp(log_p) - onehot)
    x = tf.constant(EMBEDDINGS)
    with tf.GradientTape() as tape:
        tape.watch(x)
        base, bg = losses.pixel_losses(x, LABELS, W, CENTRES, assignment, softmax)
        out = tf.reduce_sum(base) + 0.3 * tf.reduce_sum(bg)
    np.testing.assert_allclose(base, base_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bg, bg_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(out, x), grad_np, rtol=1e-4, atol=1e-6)
    if softmax == "separate":  # Eq. 2 alone, as its own function
        bm = losses.background_mining_loss(EMBEDDINGS[LABELS == 0], CENTRES,
                                           assignment[LABELS == 0])
        np.testing.assert_allclose(bm, bg_np[LABELS == 0], rtol=1e-5)


def test_total_loss_eq4_normalisations():
    # Sums 6 and 10 over 2 base and 3 background pixels, alpha = 0.1.
    assert float(losses.total_loss(6.0, 10.0, 2.0, 3.0, 0.1)) == pytest.approx(7.0 / 5.0)
    assert float(losses.total_loss(6.0, 10.0, 2.0, 3.0, 0.1, "per_term")) == pytest.approx(
        3.0 + 0.1 * 10.0 / 3.0)
    assert float(losses.total_loss(0.0, 0.0, 0.0, 0.0, 0.1)) == 0.0


# Guidance: C = 5 base-class vectors (rows) in two obvious groups, K = 3 centres.
BASE_VECTORS = np.array([[1.0, 0.0, 0.1], [1.2, 0.1, 0.0], [0.9, -0.1, 0.0],
                         [0.0, 1.0, 1.0], [0.1, 1.1, 0.9]], np.float32)


def np_kmeans(vectors, init, iterations):
    means = vectors[init].copy()
    for _ in range(iterations):
        d = ((vectors[:, None, :] - means[None]) ** 2).sum(-1)
        nearest = d.argmin(1)
        for j in range(len(means)):
            if (nearest == j).any():
                means[j] = vectors[nearest == j].mean(0)
    return means


def test_guidance_kmeans_eq5_is_lloyd_and_deterministic_under_the_seed():
    init = guidance.kmeans_init(5, 2, seed=7)
    np.testing.assert_array_equal(init, guidance.kmeans_init(5, 2, seed=7))
    means = guidance.kmeans(BASE_VECTORS, init, iterations=5).numpy()
    np.testing.assert_allclose(means, np_kmeans(BASE_VECTORS, init, 5), rtol=1e-6)
    # Whatever the start, the two groups are found (by hand: their means).
    for start in ([0, 3], [1, 4], [0, 1]):
        got = guidance.kmeans(BASE_VECTORS, np.array(start), iterations=5).numpy()
        got = got[np.argsort(got[:, 0])]
        np.testing.assert_allclose(got, [BASE_VECTORS[3:].mean(0), BASE_VECTORS[:3].mean(0)],
                                   rtol=1e-6)
    with pytest.raises(ValueError, match="--bcpt_clusters"):
        guidance.kmeans_init(5, 6, seed=0)


def np_best_mapping(scores, one_to_one):
    """Brute force over every M of Eq. 6 (rows one-hot; injective if one_to_one)."""
    rows, cols = scores.shape
    choices = (itertools.permutations(range(cols), rows) if one_to_one
               else itertools.product(range(cols), repeat=rows))
    return max(choices, key=lambda c: scores[np.arange(rows), list(c)].sum())


def test_guidance_mapping_eq6_and_update_eq7():
    guide = np.array([[1.0, 0.0, 0.0], [0.8, 0.1, 0.0]], np.float32)  # both nearest centre 0
    centres = np.array([[1.0, 0.2, 0.0], [0.7, 0.7, 0.0], [0.0, 0.0, 1.0]], np.float32).T
    scores = guide @ centres
    argmax = guidance.map_guidance(guide, centres, "argmax").numpy()
    np.testing.assert_array_equal(argmax, np_best_mapping(scores, False))
    np.testing.assert_array_equal(argmax, [0, 0])
    one_to_one = guidance.map_guidance(guide, centres, "one_to_one").numpy()
    np.testing.assert_array_equal(one_to_one, np_best_mapping(scores, True))
    assert len(set(one_to_one)) == 2
    mu = 0.9
    for mapped in (argmax, one_to_one):
        updated = guidance.guidance_update(centres, guide, mapped, mu).numpy()
        for k in range(3):
            g_hat = guide[mapped == k].sum(0)
            expected = (mu * centres[:, k] + (1 - mu) * g_hat / np.linalg.norm(g_hat)
                        if (mapped == k).any() else centres[:, k])
            np.testing.assert_allclose(updated[:, k], expected, rtol=1e-6)
        np.testing.assert_array_equal(updated[:, 2], centres[:, 2])  # no guidance: unchanged
