"""Few-shot segmentation metrics: class mIoU and FB-IoU as Keras metrics, and the test protocol.

    from svf_tf.metrics import FewShotMeanIoU, FBIoU, evaluate_episodes
    report = evaluate_episodes(predict_fn, test_dataset, num_classes=5)
"""

from svf_tf.metrics.base_class_iou import evaluate_base_classes
from svf_tf.metrics.evaluation import evaluate_episodes, summarize_seeds
from svf_tf.metrics.fb_iou import FBIoU
from svf_tf.metrics.few_shot_mean_iou import FewShotMeanIoU
from svf_tf.metrics.iou_counts import (
    COUNT_KEYS,
    episode_iou_counts,
    few_shot_iou_counts,
    pooled_iou,
    predicted_labels,
)

__all__ = ["COUNT_KEYS", "FBIoU", "FewShotMeanIoU", "episode_iou_counts", "evaluate_base_classes",
           "evaluate_episodes", "few_shot_iou_counts", "pooled_iou", "predicted_labels",
           "summarize_seeds"]
