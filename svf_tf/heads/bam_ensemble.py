"""BAM's ensemble of the meta and base learners (BAM `model/BAM.py`, `OneModel.forward`)."""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="svf_tf")
class BAMEnsemble(keras.layers.Layer):
    """`layer([meta_logits, base_logits, est_val, class_slot])` -> final [B, h, w, 2].

    - meta = softmax(meta_logits) (2 channels), base = softmax(base_logits)
      (1 + base classes).
    - base_map = sum of base's foreground channels. In training the channel
      of the episode's own class (`class_slot + 1`) is left out, because
      meta-training episodes are drawn from base classes; at inference all
      base channels count.
    - gram_merge (weights g, initialised [1, 0], shared by both channels):
      meta_bg' = g0 meta_bg + g1 est_val, meta_fg' = g0 meta_fg + g1 est_val.
    - cls_merge (weights c, initialised [1, 0]): bg = c0 meta_bg' + c1 base_map.
    - final = concat[bg, meta_fg']. These are probability-like values that
      BAM's loss treats as logits; no further softmax (`OneModel.forward`
      passes `final_out` to `CrossEntropyLoss`).
    gram_merge and cls_merge are BAM's bias-free 1x1 convs 2 -> 1.

    Args:
        num_base_classes: base classes of the base learner, without
            background (15 Pascal-5i, 60 COCO-20i).
        **kwargs: base `Layer` arguments.

    Inputs:
        meta_logits [B, h, w, 2]; base_logits [B, h, w, 1 + num_base_classes]
        (same grid); est_val [B, 1]; class_slot [B] int, the episode class's
        index among the fold's base classes (used only in training).

    Raises (call):
        ValueError: in training, a class_slot outside [0, num_base_classes).
    """

    def __init__(self, num_base_classes, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_base_classes, bool) or not isinstance(num_base_classes, int) \
                or num_base_classes < 1:
            raise ValueError(
                f"BAMEnsemble: num_base_classes={num_base_classes!r} must be a positive int "
                "(15 for Pascal-5i, 60 for COCO-20i).")
        self.num_base_classes = num_base_classes

    def build(self, input_shape):
        base_channels = input_shape[1][-1]
        if base_channels is not None and base_channels != self.num_base_classes + 1:
            raise ValueError(
                f"BAMEnsemble '{self.name}': the base learner gives {base_channels} channels, "
                f"expected 1 + num_base_classes = {self.num_base_classes + 1}.")
        initializer = keras.initializers.Constant(np.array([1.0, 0.0], np.float32))
        self.gram_merge = self.add_weight(name="gram_merge", shape=(2,), initializer=initializer)
        self.cls_merge = self.add_weight(name="cls_merge", shape=(2,), initializer=initializer)
        self.built = True

    def _check_class_slot(self, class_slot):
        if tf.executing_eagerly():
            slots = keras.ops.convert_to_numpy(class_slot)
            bad = slots[(slots < 0) | (slots >= self.num_base_classes)]
            if bad.size:
                raise ValueError(
                    f"class_slot values {sorted(set(bad.tolist()))} are outside [0, "
                    f"{self.num_base_classes}): in training, class_slot is the episode class's "
                    "index among the fold's base classes.")
            return []
        return [tf.debugging.assert_less(class_slot, self.num_base_classes,
                                         message="BAMEnsemble: class_slot out of range"),
                tf.debugging.assert_non_negative(class_slot,
                                                 message="BAMEnsemble: class_slot < 0")]

    def call(self, inputs, training=None):
        meta_logits, base_logits, est_val, class_slot = inputs
        meta = tf.nn.softmax(meta_logits, axis=-1)
        base = tf.nn.softmax(base_logits, axis=-1)
        channels = tf.range(self.num_base_classes + 1)
        keep = tf.cast(channels > 0, base.dtype)[None, :]
        if training:
            class_slot = tf.cast(tf.reshape(class_slot, [-1]), tf.int32)
            with tf.control_dependencies(self._check_class_slot(class_slot)):
                own = tf.cast(channels[None, :] == class_slot[:, None] + 1, base.dtype)
            keep = keep * (1.0 - own)
        base_map = tf.reduce_sum(base * keep[:, None, None, :], axis=-1, keepdims=True)
        est = tf.reshape(tf.cast(est_val, meta.dtype), [-1, 1, 1, 1])
        meta_bg = self.gram_merge[0] * meta[..., :1] + self.gram_merge[1] * est
        meta_fg = self.gram_merge[0] * meta[..., 1:] + self.gram_merge[1] * est
        merged_bg = self.cls_merge[0] * meta_bg + self.cls_merge[1] * base_map
        return tf.concat([merged_bg, meta_fg], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], 2)

    def get_config(self):
        return {**super().get_config(), "num_base_classes": self.num_base_classes}
