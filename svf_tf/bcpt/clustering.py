"""Online clustering of the merged background (BCPT paper Sec. 2.1, Eq. 1).

Shapes follow the paper's matrices, with pixels as rows: the centres P are
[D, K] (one column per centre, as in the paper), the background embeddings
I_bg are [N, D] (the transpose of the paper's D x N_bg), so the similarity
S = P^T I_bg is `embeddings @ centres` ([N, K]) and the aggregation
P_hat = I_bg A^T is `embeddings^T @ A^T` ([D, K]).

The statistics of one iteration (`aggregate`: P_hat and the number of
pixels of each centre) are sums, so under a distribution strategy the
replicas' statistics are summed before `momentum_update` and every replica
updates the centres identically (`svf_tf.bcpt.task`).
"""

import tensorflow as tf

from svf_tf.ops.safe_norm import safe_l2_norm


def assign(embeddings, centres):
    """The index of the most similar centre of each embedding (the one-hot A of Sec. 2.1).

    Args:
        embeddings: [N, D] background pixel embeddings.
        centres: [D, K] cluster centres P.

    Returns:
        [N] int32 indices: argmax_k <i, p_k> (ties: the lowest k).
    """
    similarity = tf.matmul(embeddings, centres)  # S^T: [N, K]
    return tf.argmax(similarity, axis=-1, output_type=tf.int32)


def aggregate(embeddings, assignment, num_centres, mask=None):
    """P_hat = I_bg A^T and the pixel count of each centre.

    Args:
        embeddings: [N, D].
        assignment: [N] centre indices (`assign`).
        num_centres: K.
        mask: optional [N] 0/1 weights: only the rows with 1 are I_bg (the
            background pixels among all the batch's).

    Returns:
        (p_hat [D, K], counts [K]): the sum of the embeddings assigned to
        each centre, and how many there were. Both are sums, so they add up
        across replicas.
    """
    one_hot = tf.one_hot(assignment, num_centres, dtype=embeddings.dtype)  # A^T: [N, K]
    if mask is not None:
        one_hot *= tf.cast(mask, one_hot.dtype)[:, None]
    return tf.matmul(embeddings, one_hot, transpose_a=True), tf.reduce_sum(one_hot, axis=0)


def normalize_columns(matrix):
    """Each column divided by its L2 norm (a zero column stays zero)."""
    norm = safe_l2_norm(matrix, axis=0, keepdims=True)
    return matrix / tf.where(norm > 0, norm, tf.ones_like(norm))


def momentum_update(centres, p_hat, counts, momentum):
    """Eq. 1: p <- mu p/||p|| + (1 - mu) p_hat/||p_hat||, for each centre that got pixels.

    A centre no pixel was assigned to (count 0) is returned unchanged: the
    paper's update has no p_hat for it, and normalising it alone would still
    move a centre that Eq. 7 left off the unit sphere.

    Args:
        centres: [D, K] current centres.
        p_hat: [D, K] summed embeddings per centre (`aggregate`, summed over
            replicas).
        counts: [K] pixels per centre (summed over replicas).
        momentum: mu in [0, 1) (the paper: 0.999).

    Returns:
        [D, K] the updated centres (no gradient flows through them).
    """
    centres, p_hat = tf.stop_gradient(centres), tf.stop_gradient(p_hat)
    updated = (momentum * normalize_columns(centres)
               + (1.0 - momentum) * normalize_columns(p_hat))
    return tf.where(counts[None, :] > 0, updated, centres)
