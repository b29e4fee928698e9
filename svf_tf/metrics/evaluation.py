"""The few-shot test protocol: logits -> original-resolution labels -> mIoU, FB-IoU.

As BAM `train.py` / `test.py` (`validate`, `ori_resize=True`) and PFENet
`test.py` (`validate`): each test episode's S x S logits are resized
bilinearly with align_corners=True to the L x L evaluation label (the raw
binary query label pasted top-left on a 255-filled square, L = max(H0, W0)),
argmax-ed, and counted against it. The test resize put the image content in
the top-left 8-floored part of the S x S canvas while the label fills all of
L x L, so predictions come out stretched by about S/(S-1); that is part of
the published numbers and is kept.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from svf_tf.metrics.fb_iou import FBIoU
from svf_tf.metrics.few_shot_mean_iou import FewShotMeanIoU
from svf_tf.metrics.iou_counts import IGNORE_LABEL, check_num_classes, few_shot_iou_counts
from svf_tf.ops.align_corners_resize import resize_align_corners

_INPUT_KEYS = ("query_image", "support_images", "support_masks", "class_slot", "original_mask")


def evaluate_episodes(predict_fn, dataset, num_classes, *, ignore_label=IGNORE_LABEL,
                      verbose=1):
    """Runs `predict_fn` on every test episode and scores it as the references do.

    Args:
        predict_fn: `fn(query_image [1,S,S,3], support_images [1,K,S,S,3],
            support_masks [1,K,S,S]) -> logits [1,S,S,2]` (background,
            foreground), e.g. a wrapped `model(...)["logits"]`.
        dataset: `svf_tf.data.pipeline.make_test_dataset(...)`, or any
            iterable of dicts with the same keys (`query_image`,
            `support_images`, `support_masks`, `class_slot` [1],
            `original_mask` [1,L,L] with 255 outside the image).
        num_classes: number of novel-class slots (5 Pascal-5i, 20 COCO-20i).
        ignore_label: label value excluded from the metrics.
        verbose: 1 shows a `keras.utils.Progbar` with the running mIoU and
            FB-IoU, 0 is silent.

    Returns:
        A dict: `miou` and `fb_iou` (floats), `class_iou` (list of
        `num_classes` floats, 0 for slots never sampled), `class_episodes`
        (episodes per slot), `episodes`, `seconds` (wall time including data
        loading) and `episodes_per_second`.
    """
    num_classes = check_num_classes(num_classes)
    miou = FewShotMeanIoU(num_classes, ignore_label=ignore_label)
    fb_iou = FBIoU(ignore_label=ignore_label)

    counts_fn = tf.function(lambda logits, original_mask, class_slot: episode_counts(
        logits, original_mask, class_slot, num_classes, ignore_label), reduce_retracing=True)

    progbar = None
    if verbose:
        progbar = keras.utils.Progbar(_length(dataset), stateful_metrics=["mIoU", "FB-IoU"],
                                      unit_name="episode")
    episodes = 0
    start = time.perf_counter()
    for element in dataset:
        _check_element(element, episodes)
        logits = predict_fn(element["query_image"], element["support_images"],
                            element["support_masks"])
        _check_logits(logits, element["query_image"], episodes)
        counts = counts_fn(logits, element["original_mask"], element["class_slot"])
        miou.update_from_counts(counts)
        fb_iou.update_from_counts(counts)
        episodes += 1
        if progbar is not None:
            progbar.update(episodes, values=[("mIoU", float(miou.result())),
                                             ("FB-IoU", float(fb_iou.result()))])
    seconds = time.perf_counter() - start
    if episodes == 0:
        raise ValueError("The test dataset yielded no episode; nothing to evaluate.")
    return _report(miou, fb_iou, episodes, seconds)


def episode_counts(logits, original_mask, class_slot, num_classes, ignore_label=IGNORE_LABEL):
    """`few_shot_iou_counts` of one test episode: logits resized to its L x L label.

    Episode sizes (S, L) vary, so callers trace it with unknown spatial sizes.
    """
    resized = resize_align_corners(tf.cast(logits, tf.float32), tf.shape(original_mask)[1:3])
    return few_shot_iou_counts(tf.cast(original_mask, tf.int32), resized,
                               tf.cast(class_slot, tf.int32), num_classes, ignore_label)


def report_from_counts(counts, num_classes, episodes, seconds, ignore_label=IGNORE_LABEL):
    """`evaluate_episodes`' report of summed counts (e.g. summed over workers)."""
    miou = FewShotMeanIoU(num_classes, ignore_label=ignore_label)
    fb_iou = FBIoU(ignore_label=ignore_label)
    miou.update_from_counts(counts)
    fb_iou.update_from_counts(counts)
    return _report(miou, fb_iou, episodes, seconds)


def _report(miou, fb_iou, episodes, seconds):
    return {
        "miou": float(miou.result()),
        "fb_iou": float(fb_iou.result()),
        "class_iou": [float(v) for v in keras.ops.convert_to_numpy(miou.per_class_iou())],
        "class_episodes": [int(v) for v in keras.ops.convert_to_numpy(
            miou.episodes_per_class())],
        "episodes": episodes,
        "seconds": seconds,
        "episodes_per_second": episodes / seconds if seconds > 0 else float("inf"),
    }


def summarize_seeds(reports):
    """Mean, standard deviation and best of mIoU and FB-IoU over seeds.

    BAM's test script evaluates the best checkpoint on 5 seeds and prints the
    mean and the best (BAM `test.py`, `main`); the mean +- std is the fairer
    number to report, the best seed being a choice made on the test set.
    The std is the population one (NumPy's default, ddof=0).

    Args:
        reports: a sequence of `evaluate_episodes` results, one per seed.

    Returns:
        A dict with `seeds` and, for `miou` and `fb_iou`, `<key>_mean`,
        `<key>_std` and `<key>_max`, plus `class_iou_mean` (per slot).
    """
    reports = list(reports)
    if not reports:
        raise ValueError("summarize_seeds needs at least one report; got an empty sequence.")
    summary = {"seeds": len(reports)}
    for key in ("miou", "fb_iou"):
        missing = [i for i, report in enumerate(reports) if key not in report]
        if missing:
            raise ValueError(
                f"Reports {missing} have no {key!r}; pass the dicts evaluate_episodes returns.")
        values = np.array([report[key] for report in reports], np.float64)
        summary.update({f"{key}_mean": float(values.mean()), f"{key}_std": float(values.std()),
                        f"{key}_max": float(values.max())})
    if all("class_iou" in report for report in reports):
        lengths = {len(report["class_iou"]) for report in reports}
        if len(lengths) != 1:
            raise ValueError(
                f"Reports have class_iou of different lengths {sorted(lengths)}: they do not "
                "come from the same fold.")
        summary["class_iou_mean"] = np.mean([r["class_iou"] for r in reports], axis=0).tolist()
    return summary


def _length(dataset):
    if isinstance(dataset, tf.data.Dataset):
        cardinality = int(dataset.cardinality())
        return cardinality if cardinality >= 0 else None
    try:
        return len(dataset)
    except TypeError:
        return None


def _check_element(element, index):
    missing = [key for key in _INPUT_KEYS if key not in element]
    if missing:
        raise ValueError(
            f"Test episode {index} has no {missing} (keys: {sorted(element)}); use "
            "svf_tf.data.pipeline.make_test_dataset, whose elements carry them.")
    shape = tuple(element["original_mask"].shape)
    if len(shape) != 3 or shape[0] != 1:
        raise ValueError(
            f"Test episode {index}: original_mask has shape {shape}, expected [1, L, L]. The "
            "protocol evaluates one episode at a time (batch size 1, as BAM's validate).")


def _check_logits(logits, query_image, index):
    shape = tuple(logits.shape)
    if len(shape) != 4 or shape[0] != 1 or shape[-1] != 2 or (
            shape[1:3] != tuple(query_image.shape[1:3])):
        raise ValueError(
            f"predict_fn returned shape {shape} for test episode {index}; it must return "
            "logits [1, S, S, 2] (background, foreground) at the query image's resolution "
            f"S x S = {tuple(query_image.shape[1:3])}, as the models do.")
