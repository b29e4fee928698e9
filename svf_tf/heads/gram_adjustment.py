"""BAM's Gram-matrix adjustment factor (BAM `model/BAM.py`, `get_gram_matrix`)."""

import keras
import tensorflow as tf

from svf_tf.ops.safe_norm import safe_l2_norm

# BAM's epsilon in the Gram denominator.
GRAM_EPSILON = 1e-7


def cosine_gram(features):
    """The C x C cosine Gram matrix of a [B, H, W, C] feature map.

    Each channel is a vector over the H*W positions:
    G_ij = <F_i, F_j> / (|F_i| |F_j| + 1e-7).

    Args:
        features: [B, H, W, C].

    Returns:
        [B, C, C].
    """
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], -1, shape[3]])  # [B, N, C]
    norms = safe_l2_norm(flat, axis=1)  # [B, C]
    gram = tf.einsum("bni,bnj->bij", flat, flat)
    return gram / (norms[:, :, None] * norms[:, None, :] + GRAM_EPSILON)


def gram_distance(query, support):
    """est_val = |G_q - G_s|_F / C, BAM's query-support dissimilarity.

    C is the Frobenius norm of an all-ones C x C matrix, so est_val lies in
    [0, 1] for non-negative (post-ReLU) features.

    Args:
        query: [B, H, W, C] query layer2 features.
        support: [B, Hs, Ws, C] support layer2 features (unmasked: the Gram
            compares whole images).

    Returns:
        [B] distances.
    """
    return gram_distance_from_gram(cosine_gram(query), support)


def gram_distance_from_gram(query_gram, support):
    """`gram_distance` with the query's Gram matrix [B, C, C] computed once."""
    difference = query_gram - cosine_gram(support)
    channels = tf.cast(tf.shape(query_gram)[-1], query_gram.dtype)
    return safe_l2_norm(difference, axis=(1, 2)) / channels


@keras.saving.register_keras_serializable(package="svf_tf")
class GramAdjustment(keras.layers.Layer):
    """`layer([query_f2, support_f2])` -> per-shot est_val, [B*K, 1].

    Args:
        shot: K.
        **kwargs: base `Layer` arguments.

    Inputs:
        query_f2: [B, H, W, C]; support_f2: [B*K, Hs, Ws, C], episode-major.
        For VGG both are layer2 features already resized to layer3's size,
        as BAM computes them.

    Returns:
        [B*K, 1] episode-major est_val of each shot.
    """

    def __init__(self, shot, **kwargs):
        super().__init__(**kwargs)
        if isinstance(shot, bool) or not isinstance(shot, int) or shot < 1:
            raise ValueError(f"GramAdjustment: shot={shot!r} must be a positive int.")
        self.shot = shot

    def call(self, inputs):
        query, support = inputs
        s_shape = tf.shape(support)
        support = tf.reshape(support, [-1, self.shot, s_shape[1], s_shape[2], s_shape[3]])
        query_gram = cosine_gram(query)
        distances = tf.stack([gram_distance_from_gram(query_gram, support[:, k])
                              for k in range(self.shot)], axis=1)
        return tf.reshape(distances, [-1, 1])

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        return (None if batch is None else batch * self.shot, 1)

    def get_config(self):
        return {**super().get_config(), "shot": self.shot}
