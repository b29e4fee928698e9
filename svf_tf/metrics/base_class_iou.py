"""Base-class mIoU of BAM's stage 1: per class, pooled over the validation images.

For every class c of the (1 + base classes)-way output, intersections and
unions are summed over all images first (pixels whose label is 255 count
for nothing, the prediction included, as `intersectionAndUnionGPU` does);
IoU_c = I_c / (U_c + 1e-10), and the base-class mIoU is the mean over the
base classes 1..C-1 (background excluded). These are the numbers BAM's
`train_base.py` selects its best stage-1 checkpoint by.
"""

import numpy as np
import tensorflow as tf

from svf_tf.metrics.iou_counts import EPSILON, IGNORE_LABEL


@tf.function(reduce_retracing=True)
def class_iou_counts(labels, logits):
    """(intersection [C], union [C]) float64 of a batch; labels [B,H,W], logits [B,H,W,C]."""
    num_classes = tf.shape(logits)[-1]
    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, IGNORE_LABEL)
    pred = tf.boolean_mask(tf.argmax(logits, axis=-1, output_type=tf.int32), valid)
    true = tf.boolean_mask(labels, valid)
    hit = tf.boolean_mask(true, tf.equal(pred, true))
    intersection = tf.math.bincount(hit, minlength=num_classes, maxlength=num_classes,
                                    dtype=tf.float64)
    area_pred = tf.math.bincount(pred, minlength=num_classes, maxlength=num_classes,
                                 dtype=tf.float64)
    area_true = tf.math.bincount(true, minlength=num_classes, maxlength=num_classes,
                                 dtype=tf.float64)
    return intersection, area_pred + area_true - intersection


def evaluate_base_classes(predict_fn, dataset):
    """Runs `predict_fn(images) -> logits [B,H,W,C]` on `dataset` ({"image", "label"}).

    Returns:
        {"miou": mean IoU over classes 1..C-1, "background_iou", "class_iou"
        (C floats, background first), "images"}.
    """
    intersection = union = None
    images = 0
    for batch in dataset:
        inter, uni = class_iou_counts(batch["label"], predict_fn(batch["image"]))
        intersection = inter if intersection is None else intersection + inter
        union = uni if union is None else union + uni
        images += int(batch["label"].shape[0])
    if intersection is None:
        raise ValueError("The validation list yielded no image; nothing to evaluate.")
    return base_class_report(intersection, union, images)


def base_class_report(intersection, union, images):
    """`evaluate_base_classes`' report of summed counts (e.g. summed over workers)."""
    iou = np.asarray(intersection) / (np.asarray(union) + EPSILON)
    return {"miou": float(iou[1:].mean()), "background_iou": float(iou[0]),
            "class_iou": [float(v) for v in iou], "images": images}
