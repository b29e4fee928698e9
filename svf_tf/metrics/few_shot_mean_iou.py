"""Few-shot mIoU: per novel class, pooled over episodes (BAM `train.py`, `validate`)."""

import keras
import tensorflow as tf

from svf_tf.metrics.iou_counts import (
    CLASS_EPISODES,
    CLASS_INTERSECTION,
    CLASS_UNION,
    IGNORE_LABEL,
    check_num_classes,
    few_shot_iou_counts,
    pooled_iou,
)


@keras.saving.register_keras_serializable(package="svf_tf")
class FewShotMeanIoU(keras.metrics.Metric):
    """The mIoU of the few-shot segmentation papers.

    For every novel-class slot j the foreground intersections and unions of
    all episodes whose class is j are **summed first**; then
    IoU_j = I_j / (U_j + 1e-10) and mIoU = mean over all `num_classes`
    slots, where a slot that no episode used counts as 0. This is not the mean
    of per-episode IoUs. Target pixels equal to `ignore_label` count for
    nothing (`intersectionAndUnionGPU` in BAM/PFENet `util/util.py`).

    The state is the per-slot sums (float64, exact for integer pixel counts
    up to 2**53), so it can also be filled from counts that were reduced
    across replicas: see `update_from_counts` and
    `iou_counts.few_shot_iou_counts`.

    Args:
        num_classes: number of novel-class slots (5 Pascal-5i, 20 COCO-20i).
        ignore_label: target value to ignore.
        name: metric name.
        dtype: dtype of `result()` and `per_class_iou()`.

    Example:
    ```python
    metric = FewShotMeanIoU(num_classes=5)
    metric.update_state(query_mask, logits, class_ids=batch["class_slot"])
    metric.result(), metric.per_class_iou()
    ```
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, name="few_shot_miou",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = check_num_classes(num_classes)
        self.ignore_label = int(ignore_label)
        shape = (self.num_classes,)
        self.intersection = self.add_variable(shape=shape, initializer="zeros",
                                              dtype="float64", name="intersection")
        self.union = self.add_variable(shape=shape, initializer="zeros", dtype="float64",
                                       name="union")
        self.episodes = self.add_variable(shape=shape, initializer="zeros", dtype="float64",
                                          name="episodes")

    def update_state(self, y_true, y_pred, class_ids, sample_weight=None):
        """Adds a batch of episodes.

        Args:
            y_true: [B, H, W] targets in {0, 1, ignore_label}.
            y_pred: labels [B, H, W] or logits [B, H, W, 2] (argmax is taken).
            class_ids: [B] novel-class slot of each episode, in [0, num_classes).
            sample_weight: unsupported (the reference has no weighting).
        """
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} does not weight pixels or episodes; got "
                f"sample_weight={sample_weight!r}. Mark pixels to skip with "
                f"{self.ignore_label} in y_true instead.")
        self.update_from_counts(few_shot_iou_counts(y_true, y_pred, class_ids,
                                                    self.num_classes, self.ignore_label))

    def update_from_counts(self, counts):
        """Adds counts from `few_shot_iou_counts` (possibly summed over replicas).

        Args:
            counts: a dict with float [num_classes] entries `class_intersection`,
                `class_union` and `class_episodes` (other keys are ignored).
        """
        for variable, key in ((self.intersection, CLASS_INTERSECTION),
                              (self.union, CLASS_UNION), (self.episodes, CLASS_EPISODES)):
            value = tf.cast(counts[key], tf.float64)
            if value.shape.rank != 1 or value.shape[0] not in (None, self.num_classes):
                raise ValueError(
                    f"counts[{key!r}] must have shape [{self.num_classes}] (num_classes); got "
                    f"{tuple(value.shape)}. Make the counts with the same num_classes.")
            variable.assign_add(value)

    def per_class_iou(self):
        """IoU of every slot, [num_classes]; 0 for slots never seen."""
        return tf.cast(pooled_iou(self.intersection, self.union), self.dtype)

    def episodes_per_class(self):
        """Number of episodes accumulated for every slot, [num_classes] float64."""
        return tf.convert_to_tensor(self.episodes)

    def result(self):
        return tf.cast(tf.reduce_mean(pooled_iou(self.intersection, self.union)), self.dtype)

    def reset_state(self):
        for variable in (self.intersection, self.union, self.episodes):
            variable.assign(tf.zeros_like(variable))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "ignore_label": self.ignore_label}
