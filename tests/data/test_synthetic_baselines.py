"""Label-derived shortcut baselines of the synthetic dataset, by hand and on the dataset."""

import cv2
import numpy as np
import pytest

from svf_tf.data.episodes.sampling import Episode, make_test_episodes
from svf_tf.data.lists.fold_lists import build_fold_lists
from svf_tf.data.synthetic.baselines import STRATEGIES, baseline_miou, baseline_predictions

# Class 1 is (ellipse, stripes); class 11 shares its shape (ellipse, rings), class 18 its
# texture (hexagon, stripes); class 3 is (triangle, dots): the class table of synthetic_scene.
LABEL = np.array([
    [1, 1, 1, 0, 0, 0],
    [1, 1, 255, 0, 11, 11],
    [0, 0, 0, 0, 11, 11],
    [18, 18, 18, 18, 18, 18],
    [3, 0, 0, 0, 0, 0],
], np.uint8)


def test_predictions_by_hand():
    predictions = baseline_predictions(LABEL, 1)
    assert list(predictions) == list(STRATEGIES)
    assert predictions["all_foreground"].all()
    np.testing.assert_array_equal(predictions["every_object"], np.isin(LABEL, [1, 3, 11, 18]))
    np.testing.assert_array_equal(predictions["largest_object"], LABEL == 18)
    np.testing.assert_array_equal(predictions["same_shape"], np.isin(LABEL, [1, 11]))
    np.testing.assert_array_equal(predictions["same_texture"], np.isin(LABEL, [1, 18]))
    empty = baseline_predictions(np.zeros((2, 2), np.uint8), 1)
    assert not empty["largest_object"].any() and not empty["every_object"].any()


def test_miou_by_hand(tmp_path):
    path = str(tmp_path / "q.png")
    cv2.imwrite(path, LABEL)
    episode = Episode(query=("q.jpg", path), class_id=1, class_slot=0,
                      supports=(("s.jpg", "s.png"),))
    # 29 valid pixels (one 255); the target (class 1) has 5.
    expected = {"all_foreground": 5 / 29, "every_object": 5 / 16, "largest_object": 0.0,
                "same_shape": 5 / 9, "same_texture": 5 / 11}
    result = baseline_miou([episode], num_classes=1)
    assert result == pytest.approx(expected, abs=1e-6)
    # A second, unused novel-class slot counts as 0 in the mean (the papers' mIoU).
    halved = baseline_miou([episode], num_classes=2)
    assert halved == pytest.approx({k: v / 2 for k, v in expected.items()}, abs=1e-6)


@pytest.mark.slow  # 300 episodes of the default dataset; the two tests above check the rules
def test_synthetic_dataset_is_not_solved_by_ignoring_the_support(synthetic_cache):
    """Perfect support-agnostic segmenters stay near 50% mIoU on the novel classes."""
    root = f"{synthetic_cache}/synthetic_pascal"
    val = build_fold_lists("pascal", root, 0, "val", cache_dir=synthetic_cache, progress=False)
    result = baseline_miou(make_test_episodes(val, 1, num_episodes=300), len(val.classes))
    assert result["all_foreground"] < 0.2, result
    assert result["every_object"] < 0.6 and result["largest_object"] < 0.6, result
    # Every shape and every texture belongs to two classes: one cue alone is not exact.
    assert result["same_shape"] < 0.995 and result["same_texture"] < 0.995, result
