"""BAM's learned k-shot weighting `kshot_rw` (BAM `model/BAM.py`, `OneModel`)."""

import keras
import tensorflow as tf

from svf_tf.ops.initializers import torch_dense

# BAM's kshot_trans_dim.
KSHOT_HIDDEN = 2


@keras.saving.register_keras_serializable(package="svf_tf")
class KShotWeighting(keras.layers.Layer):
    """Per-shot est_val [B*K, 1] -> softmax shot weights [B, K].

    The K distances of an episode are sorted ascending, mapped by
    Dense(K -> 2) + ReLU + Dense(2 -> K) (BAM's two 1x1 convs with bias on a
    [B, K, 1, 1] tensor), put back in shot order, and soft-maxed over the
    shots. With K = 1 the weight is 1 and the layer has no weights (BAM builds
    `kshot_rw` only for shot > 1).

    Args:
        shot: K.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, shot, **kwargs):
        super().__init__(**kwargs)
        if isinstance(shot, bool) or not isinstance(shot, int) or shot < 1:
            raise ValueError(f"KShotWeighting: shot={shot!r} must be a positive int.")
        self.shot = shot
        if shot > 1:
            self.hidden = torch_dense(KSHOT_HIDDEN, shot, activation="relu", name="kshot_rw_1")
            self.output_dense = torch_dense(shot, KSHOT_HIDDEN, name="kshot_rw_2")

    def build(self, input_shape):
        if self.shot > 1:
            self.hidden.build((None, self.shot))
            self.output_dense.build((None, KSHOT_HIDDEN))
        self.built = True

    def call(self, est_val):
        distances = tf.reshape(est_val, [-1, self.shot])
        if self.shot == 1:
            return tf.ones_like(distances)
        order = tf.argsort(distances, axis=1)
        inverse = tf.argsort(order, axis=1)
        ascending = tf.gather(distances, order, batch_dims=1)
        weights = self.output_dense(self.hidden(ascending))
        weights = tf.gather(weights, inverse, batch_dims=1)
        return tf.nn.softmax(weights, axis=1)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.shot
        return (batch, self.shot)

    def get_config(self):
        return {**super().get_config(), "shot": self.shot}
