"""Few-shot scores on base-class episodes, against the NumPy reference metric."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.data.episodes.sampling import make_test_episodes
from svf_tf.data.image_io import read_label
from svf_tf.data.transforms.presets import augment_config
from svf_tf.metrics.base_class_episodes import make_base_class_evaluation
from tests.data.fss_toy_data import TRAIN_CLASSES, toy_fold_lists
from tests.metrics.iou_reference import reference_scores

AUGMENT = augment_config("pascal", crop_size=33, test_size=41)


def all_foreground(query_image, support_images, support_masks):
    shape = tf.shape(query_image)[:3]
    return tf.stack([tf.zeros(shape), tf.ones(shape)], axis=-1)


def test_all_foreground_scores_equal_the_reference_on_the_same_base_episodes(tmp_path):
    lists = toy_fold_lists(str(tmp_path), "train", per_class=3)
    evaluate = make_base_class_evaluation(all_foreground, lists, 1, AUGMENT, seed=4,
                                          num_episodes=12)
    report = evaluate()
    # The reference, by hand: the same episodes (the train list cycled, seed 4), every valid
    # pixel of the raw query label predicted as foreground.
    episodes = make_test_episodes(lists, 1, 4, 12)
    assert {episode.class_id for episode in episodes} <= set(TRAIN_CLASSES)
    scored = []
    for episode in episodes:
        label = read_label(episode.query[1])
        target = np.where(label == 255, 255, (label == episode.class_id).astype(np.int64))
        scored.append((target, np.ones_like(target), episode.class_slot))
    reference = reference_scores(scored, len(TRAIN_CLASSES))
    assert report["episodes"] == 12 and len(report["class_iou"]) == 3
    assert report["miou"] == pytest.approx(reference["miou"], abs=1e-6)
    assert report["fb_iou"] == pytest.approx(reference["fb_iou"], abs=1e-6)
    assert 0.0 < report["miou"] < 1.0
    assert evaluate()["miou"] == report["miou"]  # fixed episodes: every epoch sees the same


def test_only_train_lists_are_base_classes(tmp_path):
    val = toy_fold_lists(str(tmp_path), "val", per_class=2)
    with pytest.raises(ValueError, match="takes the train lists.*got the 'val' lists"):
        make_base_class_evaluation(all_foreground, val, 1, AUGMENT)
