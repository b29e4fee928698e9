"""Combining per-shot tensors into one per episode (sum, mean or BAM's learned weights)."""

import keras
import tensorflow as tf

KSHOT_REDUCTIONS = ("sum", "mean", "weighted")


@keras.saving.register_keras_serializable(package="svf_tf")
class KShotReduce(keras.layers.Layer):
    """[B*K, ...] episode-major per-shot tensors -> [B, ...].

    The three methods combine the k priors and prototypes differently:
    - "sum": the SVF authors' baseline (ASPP) as run: its k-shot weights
      are all ones, so priors lie in [0, K] and prototypes are K times larger
      (SVF code `model/aspp.py`, `OneModel.forward`: `weight_soft =
      torch.ones_like(...)`);
    - "mean": PFENet (`PFENet.forward` divides the summed priors and
      prototypes by the shot);
    - "weighted": BAM, a sum weighted by the learned softmax weights; call
      with `[x, weights]`, weights [B, K] (BAM `OneModel.forward`).
    With K = 1 all three are the identity (BAM's 1-shot weight is 1).

    Args:
        shot: K.
        mode: "sum", "mean" or "weighted".
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, shot, mode, **kwargs):
        super().__init__(**kwargs)
        if isinstance(shot, bool) or not isinstance(shot, int) or shot < 1:
            raise ValueError(f"KShotReduce: shot={shot!r} must be a positive int.")
        if mode not in KSHOT_REDUCTIONS:
            raise ValueError(
                f"KShotReduce: mode={mode!r} is not accepted: use one of {KSHOT_REDUCTIONS} "
                "('sum' = SVF baseline as run, 'mean' = PFENet, 'weighted' = BAM).")
        self.shot = shot
        self.mode = mode

    def call(self, inputs):
        if self.mode == "weighted":
            x, weights = inputs
        else:
            x, weights = inputs, None
        shape = tf.shape(x)
        per_episode = tf.reshape(x, tf.concat([[-1, self.shot], shape[1:]], axis=0))
        if weights is not None:
            weights = tf.reshape(tf.cast(weights, x.dtype),
                                 tf.concat([tf.shape(weights), tf.ones_like(shape[1:])], 0))
            return tf.reduce_sum(per_episode * weights, axis=1)
        if self.mode == "mean":
            return tf.reduce_mean(per_episode, axis=1)
        return tf.reduce_sum(per_episode, axis=1)

    def compute_output_shape(self, input_shape):
        x_shape = input_shape[0] if self.mode == "weighted" else input_shape
        batch = None if x_shape[0] is None else x_shape[0] // self.shot
        return (batch, *x_shape[1:])

    def get_config(self):
        return {**super().get_config(), "shot": self.shot, "mode": self.mode}
