"""Intersection/union pixel counts of binary few-shot predictions.

The references' `intersectionAndUnionGPU(output, target, K=2, ignore=255)`
(BAM/PFENet `util/util.py`) per episode: the prediction is set to the
ignore value where the target is ignored, then per class c in {0: background, 1: foreground}

    intersection_c = #(pred == c and target == c)
    union_c        = #(pred == c) + #(target == c) - intersection_c

Pixels whose value is neither 0 nor 1 (the ignore label, or anything else)
fall outside the K = 2 histogram bins and count for no class.

`few_shot_iou_counts` sums these over a batch into the tensors the two
metrics accumulate. The sums are additive, so under `MirroredStrategy` the
per-replica dicts can be `strategy.reduce(SUM, counts, axis=None)`-ed and fed
to `FewShotMeanIoU.update_from_counts` / `FBIoU.update_from_counts`: the
result then does not depend on the number of replicas (stateful Keras
metrics updated inside `strategy.run` are not reliably reduced across
replicas: keras-team/keras issues #19280 and #21054).
"""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.constants import IGNORE_LABEL

#: Added to every union before dividing, as the references do.
EPSILON = 1e-10

#: Keys of the dict returned by `few_shot_iou_counts` (all float64).
CLASS_INTERSECTION = "class_intersection"  # [num_classes] foreground, per novel-class slot
CLASS_UNION = "class_union"                # [num_classes]
CLASS_EPISODES = "class_episodes"          # [num_classes] episodes per slot
FB_INTERSECTION = "fb_intersection"        # [2] background, foreground; all episodes
FB_UNION = "fb_union"                      # [2]
COUNT_KEYS = (CLASS_INTERSECTION, CLASS_UNION, CLASS_EPISODES, FB_INTERSECTION, FB_UNION)


def predicted_labels(y_pred):
    """Labels [B, H, W] int32 from labels [B, H, W] or 2-channel logits [B, H, W, 2].

    Args:
        y_pred: integer or float labels of rank 3, or logits/probabilities of
            rank 4 whose last axis has 2 channels (background, foreground).

    Returns:
        An int32 tensor [B, H, W]; logits are reduced with argmax (ties go
        to background, as `torch.max` returns the first maximum).
    """
    y_pred = tf.convert_to_tensor(y_pred)
    if y_pred.shape.rank == 4:
        if y_pred.shape[-1] != 2:
            raise ValueError(
                f"Logits must be [B, H, W, 2] (background, foreground); got shape "
                f"{tuple(y_pred.shape)}. Pass labels [B, H, W] instead for other outputs.")
        return tf.argmax(y_pred, axis=-1, output_type=tf.int32)
    if y_pred.shape.rank == 3:
        return tf.cast(y_pred, tf.int32)
    raise ValueError(
        f"Predictions must be labels [B, H, W] or logits [B, H, W, 2]; got rank "
        f"{y_pred.shape.rank} (shape {tuple(y_pred.shape)}).")


def episode_iou_counts(y_true, y_pred, ignore_label=IGNORE_LABEL):
    """Background/foreground intersection and union of every episode of a batch.

    Args:
        y_true: [B, H, W] labels in {0, 1, ignore_label}.
        y_pred: labels [B, H, W] or logits [B, H, W, 2] (see `predicted_labels`).
        ignore_label: target value excluded from every count.

    Returns:
        (intersection, union), each float64 [B, 2] with column 0 the
        background and column 1 the foreground counts.
    """
    y_true = tf.cast(tf.convert_to_tensor(y_true), tf.int32)
    labels = predicted_labels(y_pred)
    if y_true.shape.rank != 3:
        raise ValueError(f"Targets must be [B, H, W]; got shape {tuple(y_true.shape)}.")
    if None not in (*y_true.shape, *labels.shape) and y_true.shape != labels.shape:
        raise ValueError(
            f"Predictions {tuple(labels.shape)} (after argmax) and targets "
            f"{tuple(y_true.shape)} must have the same [B, H, W]; resize the logits to the "
            "label size first (evaluation.evaluate_episodes does, with align_corners=True).")
    valid = tf.not_equal(y_true, ignore_label)
    intersections, unions = [], []
    for c in (0, 1):
        pred_c = tf.logical_and(tf.equal(labels, c), valid)
        true_c = tf.equal(y_true, c)
        # Per-episode float32 sums are exact (< 2**24 pixels per image); the
        # cast to float64 keeps sums over thousands of episodes exact too.
        inter = _count(tf.logical_and(pred_c, true_c))
        intersections.append(inter)
        unions.append(_count(pred_c) + _count(true_c) - inter)
    return tf.stack(intersections, axis=1), tf.stack(unions, axis=1)


def few_shot_iou_counts(y_true, y_pred, class_ids, num_classes, ignore_label=IGNORE_LABEL):
    """The additive counts behind few-shot mIoU and FB-IoU for one batch.

    Args:
        y_true: [B, H, W] labels in {0, 1, ignore_label}.
        y_pred: labels [B, H, W] or logits [B, H, W, 2].
        class_ids: [B] int, each episode's novel-class slot in
            [0, num_classes) (the pipeline's `class_slot`).
        num_classes: number of novel-class slots (5 Pascal, 20 COCO).
        ignore_label: target value excluded from every count.

    Returns:
        A dict of float64 tensors keyed by `COUNT_KEYS`: per-slot foreground
        intersection, union and episode count ([num_classes] each), and the
        background/foreground intersection and union summed over the batch
        ([2] each).
    """
    num_classes = check_num_classes(num_classes)
    intersection, union = episode_iou_counts(y_true, y_pred, ignore_label)
    class_ids = tf.cast(tf.reshape(tf.convert_to_tensor(class_ids), [-1]), tf.int32)
    with tf.control_dependencies(_slot_checks(class_ids, num_classes)):
        class_ids = tf.identity(class_ids)
    ones = tf.ones_like(intersection[:, 1])
    return {
        CLASS_INTERSECTION: tf.math.unsorted_segment_sum(intersection[:, 1], class_ids,
                                                         num_classes),
        CLASS_UNION: tf.math.unsorted_segment_sum(union[:, 1], class_ids, num_classes),
        CLASS_EPISODES: tf.math.unsorted_segment_sum(ones, class_ids, num_classes),
        FB_INTERSECTION: tf.reduce_sum(intersection, axis=0),
        FB_UNION: tf.reduce_sum(union, axis=0),
    }


def pooled_iou(intersection, union):
    """IoU = intersection / (union + 1e-10) of accumulated counts (float64).

    A class whose union is 0 (never predicted and never present) gets 0, which
    is how the references count a novel-class slot no episode sampled.
    """
    return tf.cast(intersection, tf.float64) / (tf.cast(union, tf.float64) + EPSILON)


def _count(mask):
    return tf.cast(tf.reduce_sum(tf.cast(mask, tf.float32), axis=[1, 2]), tf.float64)


def check_num_classes(num_classes):
    """`num_classes` as an int, or a ValueError saying what it should be."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or (
            num_classes < 1):
        raise ValueError(
            f"num_classes={num_classes!r} must be a positive int: the number of novel-class "
            "slots (5 for Pascal-5i, 20 for COCO-20i).")
    return int(num_classes)


def _slot_checks(class_ids, num_classes):
    """Slots must lie in [0, num_classes): an out-of-range slot would be dropped silently."""
    if tf.executing_eagerly():
        ids = keras.ops.convert_to_numpy(class_ids)
        bad = sorted({int(i) for i in ids if not 0 <= i < num_classes})
        if bad:
            raise ValueError(
                f"class_ids must be novel-class slots in [0, {num_classes}); got {bad}. Pass "
                "the episodes' `class_slot`, not their dataset `class_id`.")
        return []
    in_range = tf.logical_and(class_ids >= 0, class_ids < num_classes)
    return [tf.debugging.Assert(tf.reduce_all(in_range), [
        f"class_ids must be novel-class slots in [0, {num_classes}); got", class_ids])]
