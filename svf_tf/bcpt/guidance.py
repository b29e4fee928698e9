"""Online clustering with guidance from the base classes (BCPT paper Sec. 2.3, Eq. 5-7).

At the start of every iteration: k-means over the base-class vectors
{w_c} (the columns of the projection W) gives K - 1 guidance vectors G
(Eq. 5); each guidance vector is mapped to a centre by maximising
Tr(M^T G^T P) (Eq. 6); every centre with guidance is moved towards the sum
of its guidance vectors (Eq. 7).

What the paper leaves open, and our choices (docs/bcpt.md):
- k-means: Lloyd's algorithm with Euclidean distance for a fixed number of
  iterations, started from K - 1 of the vectors chosen by the run's seed
  (`kmeans_init`); the same start every iteration, so the guidance moves
  only as W moves and a resumed run recomputes it exactly. A cluster that
  loses all its vectors keeps its previous mean.
- Eq. 6's constraint (each row of M one-hot) makes the maximum a per-row
  argmax, so two guidance vectors may share a centre ("argmax", the
  default, read literally); "one_to_one" adds the constraint that no centre
  takes two (an assignment problem, solved exactly).
"""

import numpy as np
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from svf_tf.bcpt.clustering import normalize_columns

#: Eq. 6 readings: per-row argmax (literal) or one guidance vector per centre.
GUIDANCE_MAPPINGS = ("argmax", "one_to_one")


def kmeans_init(num_vectors, num_clusters, seed):
    """The indices of the vectors k-means starts from: a permutation's first k, by seed.

    NumPy's `default_rng(seed)`, so the start depends on the run's seed only.

    Raises:
        ValueError: fewer vectors than clusters.
    """
    if num_clusters > num_vectors:
        raise ValueError(f"k-means of {num_vectors} base-class vectors into {num_clusters} "
                         "guidance vectors needs at least as many vectors as clusters; lower "
                         "--bcpt_clusters (K - 1 guidance vectors).")
    return np.sort(np.random.default_rng(seed).permutation(num_vectors)[:num_clusters])


def kmeans(vectors, init_indices, iterations):
    """Eq. 5: Lloyd's k-means of the rows of `vectors`, started at `vectors[init_indices]`.

    Args:
        vectors: [C, D] the base-class vectors (rows).
        init_indices: [k] int indices (`kmeans_init`).
        iterations: number of assignment + mean steps.

    Returns:
        [k, D] the cluster means (the guidance vectors as rows, G^T).
    """
    vectors = tf.stop_gradient(vectors)
    means = tf.gather(vectors, init_indices)
    k = tf.shape(means)[0]
    squared = tf.reduce_sum(tf.square(vectors), axis=1, keepdims=True)
    for _ in range(iterations):
        distance = (squared - 2.0 * tf.matmul(vectors, means, transpose_b=True)
                    + tf.reduce_sum(tf.square(means), axis=1)[None, :])
        members = tf.one_hot(tf.argmin(distance, axis=1, output_type=tf.int32), k,
                             dtype=vectors.dtype)  # [C, k]
        counts = tf.reduce_sum(members, axis=0)
        sums = tf.matmul(members, vectors, transpose_a=True)
        means = tf.where(counts[:, None] > 0, sums / tf.maximum(counts, 1.0)[:, None], means)
    return means


def one_to_one_mapping(scores):
    """The injective row -> column map maximising the summed scores (Hungarian algorithm).

    Args:
        scores: [K-1, K] NumPy array.

    Returns:
        [K-1] int32 column of each row.
    """
    rows, columns = linear_sum_assignment(scores, maximize=True)
    mapped = np.empty(scores.shape[0], np.int32)
    mapped[rows] = columns
    return mapped


def map_guidance(guidance, centres, mapping="argmax"):
    """Eq. 6: the centre each guidance vector is assigned to.

    Args:
        guidance: [K-1, D] guidance vectors (rows).
        centres: [D, K] centres P.
        mapping: "argmax" (each row of M one-hot: the per-row maximum) or
            "one_to_one" (also at most one guidance vector per centre).

    Returns:
        [K-1] int32 centre indices (the columns of M's ones).
    """
    scores = tf.matmul(guidance, centres)  # G^T P: [K-1, K]
    if mapping == "argmax":
        return tf.argmax(scores, axis=1, output_type=tf.int32)
    if mapping == "one_to_one":
        mapped = tf.numpy_function(one_to_one_mapping, [scores], tf.int32, stateful=False)
        return tf.ensure_shape(mapped, [guidance.shape[0]])
    raise ValueError(f"mapping={mapping!r}: give one of {', '.join(GUIDANCE_MAPPINGS)}.")


def guidance_update(centres, guidance, mapped, momentum):
    """Eq. 7: p <- mu p + (1 - mu) g_hat/||g_hat|| for each centre with guidance.

    g_hat is the sum of the guidance vectors mapped to p; a centre without
    guidance (at least one, as K - 1 < K) is unchanged. p is not normalised
    here, as Eq. 7 writes it (unlike Eq. 1).

    Args:
        centres: [D, K].
        guidance: [K-1, D] rows.
        mapped: [K-1] centre index of each guidance vector (`map_guidance`).
        momentum: mu.

    Returns:
        [D, K] the updated centres.
    """
    centres, guidance = tf.stop_gradient(centres), tf.stop_gradient(guidance)
    num_centres = tf.shape(centres)[1]
    members = tf.one_hot(mapped, num_centres, dtype=centres.dtype)  # M: [K-1, K]
    g_hat = tf.matmul(guidance, members, transpose_a=True)  # [D, K]
    updated = momentum * centres + (1.0 - momentum) * normalize_columns(g_hat)
    return tf.where(tf.reduce_sum(members, axis=0)[None, :] > 0, updated, centres)
