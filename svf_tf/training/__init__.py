"""Training and evaluation foundations: metrics, PyTorch-style SGD, LR schedules, test protocol.

    from svf_tf.training import TorchSGD, make_lr_schedule, evaluate_episodes
    optimizer = TorchSGD(make_lr_schedule("constant", 0.015), momentum=0.9,
                         weight_decay=1e-4, lr_multipliers={r"svf_s$": 0.1})
    report = evaluate_episodes(predict_fn, test_dataset, num_classes=5)
"""

from svf_tf.training.evaluation import evaluate_episodes, summarize_seeds
from svf_tf.training.fb_iou import FBIoU
from svf_tf.training.few_shot_mean_iou import FewShotMeanIoU
from svf_tf.training.iou_counts import (
    COUNT_KEYS,
    episode_iou_counts,
    few_shot_iou_counts,
    pooled_iou,
    predicted_labels,
)
from svf_tf.training.lr_schedules import (
    SCHEDULES,
    ConstantLearningRate,
    CosineAnnealing,
    PolyDecay,
    make_lr_schedule,
)
from svf_tf.training.torch_sgd import TorchSGD

__all__ = [
    "COUNT_KEYS", "ConstantLearningRate", "CosineAnnealing", "FBIoU", "FewShotMeanIoU",
    "PolyDecay", "SCHEDULES", "TorchSGD", "episode_iou_counts", "evaluate_episodes",
    "few_shot_iou_counts", "make_lr_schedule", "pooled_iou", "predicted_labels",
    "summarize_seeds",
]
