"""The training-free prior mask of PFENet (PFENet `model/PFENet.py`, `PFENet.forward`)."""

import keras
import tensorflow as tf

from svf_tf.ops.align_corners_resize import resize_align_corners, spatial_size
from svf_tf.ops.safe_norm import safe_l2_norm

# The references' `cosine_eps`, in the cosine denominator and the min-max range.
COSINE_EPSILON = 1e-7


def cosine_prior(query, support):
    """Prior of one shot: max cosine similarity to the support, min-max normalised.

    For every query position p: prior[p] = max_j <s_j, q_p> / (|s_j| |q_p| + 1e-7)
    over all support positions j, then per sample
    (prior - min) / (max - min + 1e-7). Masked-out support positions are zero
    vectors, so they contribute 0 (never NaN, also in the gradient). Query
    and support may differ in size; the query grid need not be square.

    Args:
        query: [B, h, w, C] query layer4 features.
        support: [B, hs, ws, C] support layer4 features, already multiplied
            by the support mask.

    Returns:
        [B, h, w, 1] prior in [0, 1].
    """
    shape = tf.shape(query)
    batch, channels = shape[0], shape[3]
    q = tf.reshape(query, [batch, -1, channels])
    s = tf.reshape(support, [batch, -1, channels])
    q_norm = safe_l2_norm(q, axis=-1)
    s_norm = safe_l2_norm(s, axis=-1)
    dot = tf.einsum("bjc,bpc->bjp", s, q)
    similarity = dot / (s_norm[:, :, None] * q_norm[:, None, :] + COSINE_EPSILON)
    prior = tf.reduce_max(similarity, axis=1)
    low = tf.reduce_min(prior, axis=1, keepdims=True)
    high = tf.reduce_max(prior, axis=1, keepdims=True)
    prior = (prior - low) / (high - low + COSINE_EPSILON)
    return tf.reshape(prior, [batch, shape[1], shape[2], 1])


@keras.saving.register_keras_serializable(package="svf_tf")
class PriorMask(keras.layers.Layer):
    """`layer([query_f4, support_f4, support_mask])` -> per-shot priors [B*K, h, w, 1].

    The full-resolution support mask is resized (bilinear, align_corners) to
    the support layer4 size and multiplied into the support features (the
    references mask layer4 again here, after masking layer3 before layer4),
    then `cosine_prior` runs once per shot. Shots are handled one at a time,
    as the references do, so the [Ns, Nq] similarity of only one shot is
    alive at once (3600 x 3600 per sample at 473 px).

    Args:
        shot: K, the number of supports per episode.
        **kwargs: base `Layer` arguments.

    Inputs:
        query_f4: [B, h, w, C]; support_f4: [B*K, hs, ws, C] (episode-major:
        row b*K + k is shot k of episode b); support_mask: [B*K, H, W, 1]
        foreground mask in {0, 1}.

    Returns:
        [B*K, h, w, 1] priors at the query layer4 size, episode-major.
    """

    def __init__(self, shot, **kwargs):
        super().__init__(**kwargs)
        if isinstance(shot, bool) or not isinstance(shot, int) or shot < 1:
            raise ValueError(f"PriorMask: shot={shot!r} must be a positive int.")
        self.shot = shot

    def call(self, inputs):
        query, support, mask = inputs
        mask = resize_align_corners(tf.cast(mask, support.dtype), spatial_size(support))
        support = support * mask
        s_shape = tf.shape(support)
        support = tf.reshape(support, [-1, self.shot, s_shape[1], s_shape[2], s_shape[3]])
        priors = [cosine_prior(query, support[:, k]) for k in range(self.shot)]
        priors = tf.stack(priors, axis=1)
        q_shape = tf.shape(query)
        return tf.reshape(priors, [-1, q_shape[1], q_shape[2], 1])

    def compute_output_shape(self, input_shape):
        query_shape = input_shape[0]
        batch = None if query_shape[0] is None else query_shape[0] * self.shot
        return (batch, query_shape[1], query_shape[2], 1)

    def get_config(self):
        return {**super().get_config(), "shot": self.shot}
