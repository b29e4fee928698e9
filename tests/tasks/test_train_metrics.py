"""The training episodes' mIoU and FB-IoU of an epoch, from hand-made counts."""

import numpy as np

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.tasks.few_shot import FewShotTask


def test_train_metrics_pool_counts_over_the_classes_drawn(tmp_path):
    task = FewShotTask(ExperimentConfig.from_settings(synthetic=True,
                                                      work_dir=str(tmp_path / "run")))
    assert task.num_base == 15  # Pascal-5i fold 0
    intersection, union, episodes = np.zeros(15), np.zeros(15), np.zeros(15)
    intersection[[0, 3]], union[[0, 3]], episodes[[0, 3]] = (30, 10), (60, 40), (2, 1)
    counts = {"class_intersection": intersection, "class_union": union,
              "class_episodes": episodes, "fb_intersection": np.array([80.0, 40.0]),
              "fb_union": np.array([100.0, 100.0])}
    metrics = task.train_metrics(counts)
    # Slots 0 and 3 were drawn: (30/60 + 10/40) / 2; undrawn slots do not count.
    np.testing.assert_allclose(metrics["train/miou"], 0.375)
    np.testing.assert_allclose(metrics["train/fb_iou"], 0.6)
    assert task.train_metrics({}) == {}
