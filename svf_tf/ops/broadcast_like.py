"""Tiling a [B, 1, 1, C] vector over a feature map's grid."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="svf_tf")
class BroadcastLike(keras.layers.Layer):
    """`layer([vector, like])`: [B, 1, 1, C] -> [B, h, w, C] with like's h, w.

    The prototype is concatenated to every query position ("tile & cat",
    PFENet `model/PFENet.py` and BAM `model/BAM.py`, `forward`: the prototype
    expanded to the query size before `init_merge`); the size comes from a
    tensor so that it may be known only at run time.
    """

    def call(self, inputs):
        vector, like = inputs
        like_shape = tf.shape(like)
        target = tf.stack([tf.shape(vector)[0], like_shape[1], like_shape[2],
                           tf.shape(vector)[3]])
        # Keep the static sizes that are known (the channels, for the next conv).
        return tf.ensure_shape(tf.broadcast_to(vector, target),
                               [vector.shape[0], like.shape[1], like.shape[2], vector.shape[3]])

    def compute_output_shape(self, input_shape):
        vector_shape, like_shape = input_shape
        return (vector_shape[0], like_shape[1], like_shape[2], vector_shape[-1])
