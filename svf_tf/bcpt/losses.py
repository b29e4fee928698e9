"""The BCPT objective: background mining loss (Eq. 2), base loss (Eq. 3), total (Eq. 4).

BCPT paper Sec. 2.2. Every pixel embedding i of layer4 is scored against
the base-class vectors w_c (the columns of the linear projection W) and
the K background centres p_k by inner products. A base-class pixel is
trained towards its class (Eq. 3), a background pixel towards the centre
online clustering assigned it to (Eq. 2), and the two sums are combined
with the weight alpha (Eq. 4).

Open points and our choices (why: docs/bcpt.md):
- softmax="joint" (default): one softmax over {w_c} and {p_k} together, for
  both kinds of pixel: the background is "a group of vectors" next to the
  base-class vectors (Sec. 2.2), so a background pixel is also pushed away
  from every base class. "separate": Eq. 2 and Eq. 3 literally, a softmax
  over the centres only and one over the base classes only.
- normalization="pixels" (default): Eq. 4's sums divided by the number of
  labelled pixels of the global batch (base + background), which keeps the
  paper's alpha between the sums and the per-pixel scale of the standard
  cross entropy; "per_term": each sum divided by its own pixel count.
- The embeddings enter as they are (the paper's inner products); the
  `l2` option of the task normalises them before clustering and loss.
"""

import tensorflow as tf

from svf_tf.constants import BCPT_LOSS_NORMALIZATIONS as LOSS_NORMALIZATIONS
from svf_tf.constants import BCPT_SOFTMAX as SOFTMAX_MODES


def _cross_entropy(logits, target):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits)


def background_mining_loss(embeddings, centres, assignment):
    """Eq. 2 per pixel: -log softmax_k(<i, p_k>) at the assigned centre.

    Args:
        embeddings: [N, D] background pixel embeddings.
        centres: [D, K] (no gradient flows into them).
        assignment: [N] assigned centre indices.

    Returns:
        [N] per-pixel losses.
    """
    return _cross_entropy(tf.matmul(embeddings, tf.stop_gradient(centres)), assignment)


def pixel_losses(embeddings, labels, projection, centres, assignment, softmax="joint"):
    """Per-pixel losses of Eq. 3 (base pixels) and Eq. 2 (background pixels).

    Args:
        embeddings: [N, D] pixel embeddings.
        labels: [N] int: 0 background (true background and novel classes),
            1..C base class, 255 ignored.
        projection: [D, C] W, the base-class vectors as columns.
        centres: [D, K] P.
        assignment: [N] centre of each pixel (only background pixels' count).
        softmax: "joint" or "separate" (module docstring).

    Returns:
        (base [N], background [N]): each pixel's loss in its own term, zero
        where the pixel does not belong to the term.
    """
    labels = tf.cast(labels, tf.int32)
    is_base = tf.logical_and(labels > 0, labels != 255)
    is_background = tf.equal(labels, 0)
    num_classes = tf.shape(projection)[1]
    class_index = tf.where(is_base, labels - 1, 0)
    class_scores = tf.matmul(embeddings, projection)
    centre_scores = tf.matmul(embeddings, tf.stop_gradient(centres))
    if softmax == "joint":
        scores = tf.concat([class_scores, centre_scores], axis=-1)
        base = _cross_entropy(scores, class_index)
        background = _cross_entropy(scores, num_classes + assignment)
    elif softmax == "separate":
        base = _cross_entropy(class_scores, class_index)
        background = _cross_entropy(centre_scores, assignment)
    else:
        raise ValueError(f"softmax={softmax!r}: give one of {', '.join(SOFTMAX_MODES)}.")
    zero = tf.zeros_like(base)
    return tf.where(is_base, base, zero), tf.where(is_background, background, zero)


def total_loss(base_sum, background_sum, base_count, background_count, alpha,
               normalization="pixels"):
    """Eq. 4, normalised: (sum_base + alpha sum_BM) / pixels, or each sum by its count.

    Args:
        base_sum, background_sum: the sums of Eq. 4 (local or global).
        base_count, background_count: the pixel counts to normalise by (of
            the global batch under a distribution strategy, so that the
            replicas' losses add up to the global one).
        alpha: the weight of the background mining loss (paper: 0.1).
        normalization: "pixels" or "per_term" (module docstring).
    """
    if normalization == "pixels":
        return (base_sum + alpha * background_sum) / tf.maximum(base_count + background_count,
                                                                1.0)
    if normalization == "per_term":
        return (base_sum / tf.maximum(base_count, 1.0)
                + alpha * background_sum / tf.maximum(background_count, 1.0))
    raise ValueError(f"normalization={normalization!r}: give one of "
                     f"{', '.join(LOSS_NORMALIZATIONS)}.")
