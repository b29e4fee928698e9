"""What shortcuts reach on the synthetic dataset: label-derived baselines.

Each strategy predicts an episode's query foreground from the query's
ground-truth label and the episode class, never from pixels, so it is the
best a model relying on that one shortcut could do:

- `all_foreground`: every pixel (what predicting "object everywhere" gets).
- `every_object`: every labelled object, whatever its class: a perfect
  class-agnostic segmenter that ignores the support.
- `largest_object`: the largest labelled object: a perfect salient-object
  segmenter that ignores the support.
- `same_shape`: every object whose class has the episode class's shape: a
  perfect matcher that compares shapes only.
- `same_texture`: the same with textures.

Scores are the papers' few-shot mIoU (`FewShotMeanIoU`: per class slot,
intersections and unions summed over episodes) at the label's resolution,
with 255 pixels ignored. A few-shot model shows that it uses the support
only when it beats the two support-agnostic oracles.
"""

import numpy as np

from svf_tf.data.image_io import read_label
from svf_tf.data.synthetic.scene import NUM_SYNTHETIC_CLASSES, class_design
from svf_tf.metrics.few_shot_mean_iou import FewShotMeanIoU
from svf_tf.metrics.iou_counts import IGNORE_LABEL

STRATEGIES = ("all_foreground", "every_object", "largest_object", "same_shape", "same_texture")


def _classes_sharing(class_id: int, part: int) -> list[int]:
    """Classes 1..20 whose design shares part 0 (shape) or 1 (texture) with `class_id`."""
    wanted = class_design(class_id)[part]
    return [c for c in range(1, NUM_SYNTHETIC_CLASSES + 1) if class_design(c)[part] == wanted]


def baseline_predictions(label: np.ndarray, class_id: int) -> dict[str, np.ndarray]:
    """Each strategy's binary (H, W) prediction for a query label and episode class.

    Args:
        label: the query's index label (0 background, 1..20, 255 boundary).
        class_id: the episode's class, 1..20.

    Returns:
        {strategy: bool array of the label's shape}.
    """
    objects = (label != 0) & (label != IGNORE_LABEL)
    ids, counts = np.unique(label[objects], return_counts=True)
    largest = label == ids[np.argmax(counts)] if ids.size else np.zeros(label.shape, bool)
    return {
        "all_foreground": np.ones(label.shape, bool),
        "every_object": objects,
        "largest_object": largest,
        "same_shape": np.isin(label, _classes_sharing(class_id, 0)),
        "same_texture": np.isin(label, _classes_sharing(class_id, 1)),
    }


def baseline_miou(episodes, num_classes: int) -> dict[str, float]:
    """Few-shot mIoU of every strategy over test episodes of the synthetic dataset.

    Args:
        episodes: `Episode`s (e.g. `sampling.make_test_episodes`) whose query
            labels are synthetic-dataset labels.
        num_classes: novel-class slots of the fold (5).

    Returns:
        {strategy: mIoU in [0, 1]}, in `STRATEGIES` order.
    """
    metrics = {name: FewShotMeanIoU(num_classes) for name in STRATEGIES}
    for episode in episodes:
        label = read_label(episode.query[1])
        target = np.where(label == IGNORE_LABEL, IGNORE_LABEL, label == episode.class_id)
        for name, prediction in baseline_predictions(label, episode.class_id).items():
            metrics[name].update_state(target[None].astype(np.int32),
                                       prediction[None].astype(np.int32),
                                       class_ids=np.array([episode.class_slot]))
    return {name: float(metric.result()) for name, metric in metrics.items()}
