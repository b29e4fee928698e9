"""FB-IoU: background/foreground IoU pooled over all episodes (BAM `train.py`, `validate`)."""

import keras
import tensorflow as tf

from svf_tf.metrics.iou_counts import (
    FB_INTERSECTION,
    FB_UNION,
    IGNORE_LABEL,
    episode_iou_counts,
    pooled_iou,
)


@keras.saving.register_keras_serializable(package="svf_tf")
class FBIoU(keras.metrics.Metric):
    """Foreground-background IoU as printed by PFENet/BAM (`FBIoU`).

    Background and foreground intersections and unions are summed over all
    episodes regardless of their class; IoU_c = sum(I_c) / (sum(U_c) + 1e-10)
    and FB-IoU = (IoU_bg + IoU_fg) / 2. It is not a mean of per-episode
    values. Target pixels equal to `ignore_label` count for nothing.

    Args:
        ignore_label: target value to ignore.
        name: metric name.
        dtype: dtype of `result()` and `per_class_iou()`.

    Example:
    ```python
    metric = FBIoU()
    metric.update_state(query_mask, logits)
    metric.result()
    ```
    """

    def __init__(self, ignore_label=IGNORE_LABEL, name="fb_iou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_label = int(ignore_label)
        self.intersection = self.add_variable(shape=(2,), initializer="zeros", dtype="float64",
                                              name="intersection")
        self.union = self.add_variable(shape=(2,), initializer="zeros", dtype="float64",
                                       name="union")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch of episodes.

        Args:
            y_true: [B, H, W] targets in {0, 1, ignore_label}.
            y_pred: labels [B, H, W] or logits [B, H, W, 2] (argmax is taken).
            sample_weight: unsupported (the reference has no weighting).
        """
        if sample_weight is not None:
            raise ValueError(
                f"FBIoU does not weight pixels or episodes; got sample_weight={sample_weight!r}. "
                f"Mark pixels to skip with {self.ignore_label} in y_true instead.")
        intersection, union = episode_iou_counts(y_true, y_pred, self.ignore_label)
        self.update_from_counts({FB_INTERSECTION: tf.reduce_sum(intersection, axis=0),
                                 FB_UNION: tf.reduce_sum(union, axis=0)})

    def update_from_counts(self, counts):
        """Adds counts from `few_shot_iou_counts` (possibly summed over replicas).

        Args:
            counts: a dict with float [2] entries `fb_intersection` and
                `fb_union` (background, foreground; other keys are ignored).
        """
        for variable, key in ((self.intersection, FB_INTERSECTION), (self.union, FB_UNION)):
            value = tf.cast(counts[key], tf.float64)
            if value.shape.rank != 1 or value.shape[0] not in (None, 2):
                raise ValueError(
                    f"counts[{key!r}] must have shape [2] (background, foreground); got "
                    f"{tuple(value.shape)}.")
            variable.assign_add(value)

    def per_class_iou(self):
        """[IoU_background, IoU_foreground]."""
        return tf.cast(pooled_iou(self.intersection, self.union), self.dtype)

    def result(self):
        return tf.cast(tf.reduce_mean(pooled_iou(self.intersection, self.union)), self.dtype)

    def reset_state(self):
        for variable in (self.intersection, self.union):
            variable.assign(tf.zeros_like(variable))

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label}
