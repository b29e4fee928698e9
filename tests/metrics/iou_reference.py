"""NumPy version of the references' metric (`intersectionAndUnionGPU`), written for tests.

It follows the reference's recipe literally: flatten, overwrite the
prediction with 255 where the target is 255, then 2-bin histograms over
[0, 1] of the matching pixels, of the prediction and of the target.
"""

import numpy as np


def reference_intersection_union(target, pred, num_bins=2, ignore=255):
    """(area_intersection, area_union) per class {0, 1} of one episode."""
    target = np.asarray(target).ravel()
    pred = np.asarray(pred).ravel().copy()
    pred[target == ignore] = ignore
    matched = pred[pred == target]
    hist = lambda values: np.histogram(values, bins=num_bins, range=(0, num_bins - 1))[0]  # noqa: E731
    area_intersection = hist(matched)
    return area_intersection, hist(pred) + hist(target) - area_intersection


def reference_scores(episodes, num_classes):
    """mIoU, per-class IoU, FB-IoU of (target, pred_labels, slot) episodes.

    Per slot the foreground intersections and unions are summed over its
    episodes before dividing; FB-IoU pools background and foreground over all
    episodes.
    """
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    fb_inter = np.zeros(2)
    fb_union = np.zeros(2)
    for target, pred, slot in episodes:
        i, u = reference_intersection_union(target, pred)
        inter[slot] += i[1]
        union[slot] += u[1]
        fb_inter += i
        fb_union += u
    class_iou = inter / (union + 1e-10)
    return {"miou": class_iou.mean(), "class_iou": class_iou,
            "fb_iou": np.mean(fb_inter / (fb_union + 1e-10))}
