"""An L2 norm whose gradient is finite at zero."""

import tensorflow as tf


def safe_l2_norm(x, axis, keepdims=False):
    """sqrt(sum(x^2)) along `axis`, with gradient 0 (not NaN) where the norm is 0.

    The prior and the Gram factor divide by norms of feature vectors that are
    exactly zero for masked-out support positions, empty support masks or dead
    ReLU channels. `tf.norm`'s gradient there is 0 * inf = NaN; PyTorch's
    `torch.norm` returns 0 for it. Values are identical to `tf.norm`.

    Args:
        x: float tensor.
        axis: int or tuple of ints.
        keepdims: keep reduced axes with size 1.

    Returns:
        The norms.
    """
    squared = tf.reduce_sum(tf.square(x), axis=axis, keepdims=keepdims)
    positive = squared > 0
    # Double where: the sqrt never sees a zero, so its gradient is never inf.
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))),
                    tf.zeros_like(squared))
