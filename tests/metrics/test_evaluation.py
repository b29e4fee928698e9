"""The test protocol of BAM `validate`: resize S -> L (align_corners), argmax, pooled IoUs."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.metrics.evaluation import evaluate_episodes, summarize_seeds
from tests.metrics.iou_reference import reference_scores


def episode(logits, original_mask, slot):
    """A test element whose query image carries the logits the fake model will return."""
    logits = np.asarray(logits, np.float32)
    size = logits.shape[0]
    image = np.zeros((1, size, size, 3), np.float32)
    image[0, ..., :2] = logits
    return {
        "query_image": image,
        "support_images": np.zeros((1, 1, size, size, 3), np.float32),
        "support_masks": np.zeros((1, 1, size, size), np.int32),
        "class_slot": np.array([slot], np.int32),
        "original_mask": np.asarray(original_mask, np.int32)[None],
        "query_path": np.array([b"query.jpg"]),
    }


def logits_from_query(query_image, support_images, support_masks):
    """The fake model: returns the logits stored in the query image's first two channels."""
    del support_images, support_masks
    return query_image[..., :2]


def one_hot_logits(labels):
    labels = np.asarray(labels)
    return np.stack([labels != 1, labels == 1], axis=-1).astype(np.float32)


def numpy_resize_align_corners(image, out_h, out_w):
    """Bilinear [H, W, C] -> [out_h, out_w, C]; output i samples input i * (in - 1) / (out - 1)."""
    in_h, in_w = image.shape[:2]
    ys = np.arange(out_h) * ((in_h - 1) / (out_h - 1))
    xs = np.arange(out_w) * ((in_w - 1) / (out_w - 1))
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, in_h - 1), np.minimum(x0 + 1, in_w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def test_exact_ground_truth_scores_one_on_seen_classes_and_zero_on_unseen():
    rng = np.random.default_rng(0)
    elements, slots = [], [0, 2, 2, 4]
    for slot in slots:
        target = rng.choice([0, 1, 255], p=[0.5, 0.4, 0.1], size=(11, 11))
        target[0, :2] = [0, 1]  # both classes present
        # S == L: the align_corners resize is the identity, the argmax the target.
        elements.append(episode(one_hot_logits(target), target, slot))
    report = evaluate_episodes(logits_from_query, elements, num_classes=5, verbose=0)
    np.testing.assert_allclose(report["class_iou"], [1, 0, 1, 0, 1], atol=1e-9)
    assert report["miou"] == pytest.approx(3 / 5)
    assert report["fb_iou"] == pytest.approx(1.0)
    assert report["class_episodes"] == [1, 0, 2, 0, 1]
    assert report["episodes"] == 4 and report["seconds"] > 0
    assert report["episodes_per_second"] == pytest.approx(4 / report["seconds"])


def test_all_background_scores_zero_miou():
    rng = np.random.default_rng(1)
    targets = [rng.choice([0, 1, 255], size=(12, 12)) for _ in range(3)]
    elements = [episode(np.tile([5.0, -5.0], (9, 9, 1)), t, s)
                for t, s in zip(targets, [0, 1, 1], strict=True)]
    report = evaluate_episodes(logits_from_query, elements, num_classes=2, verbose=0)
    assert report["miou"] == 0.0 and report["class_iou"] == [0.0, 0.0]
    valid = sum(int(np.sum(t != 255)) for t in targets)
    background = sum(int(np.sum(t == 0)) for t in targets)
    assert report["fb_iou"] == pytest.approx(0.5 * background / valid)


def test_hand_computed_case_pools_episodes_of_a_class():
    ignore = 255
    cases = [  # (target, prediction, slot)
        ([[1, 1, 0], [0, 0, 0], [ignore] * 3], [[1, 0, 0], [1, 0, 0], [1, 1, 1]], 0),
        ([[0, 0, 0], [0, 1, 1], [0, 1, 1]], [[0, 1, 1], [1, 1, 1], [1, 1, 1]], 0),
        ([[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[0] * 3] * 3, 1),
    ]
    elements = [episode(one_hot_logits(p), t, s) for t, p, s in cases]
    report = evaluate_episodes(logits_from_query, elements, num_classes=2, verbose=0)
    # Slot 0: fg I = 1 + 4, U = 3 + 8. Slot 1: I = 0, U = 1.
    # Background: I = 3 + 1 + 8, U = 5 + 5 + 9; foreground: I = 5, U = 12.
    np.testing.assert_allclose(report["class_iou"], [5 / 11, 0.0], rtol=1e-6)
    assert report["miou"] == pytest.approx(5 / 22)
    assert report["fb_iou"] == pytest.approx((12 / 19 + 5 / 12) / 2)


def test_align_corners_stretch_of_the_test_protocol():
    """S = 9, L = 12: a 12 x 12 image occupies the top-left 8 x 8 of the 9 x 9 canvas.

    The object covers original rows/cols 3..8, i.e. canvas rows/cols 2..5, and
    the model predicts it perfectly there. Resizing the 9 x 9 logits to 12 x 12
    with align_corners samples canvas coordinate i * 8 / 11, so the prediction
    is stretched by 11/8 * 8/12 relative to the label: predicted foreground is
    rows/cols 3..7 (canvas row 7 * 8/11 = 5.09 -> 0.91 foreground; row 2 * 8/11
    = 1.45 -> 0.45, background), the label's is 3..8.
    """
    fg = np.zeros((9, 9), int)
    fg[2:6, 2:6] = 1
    label = np.zeros((12, 12), int)
    label[3:9, 3:9] = 1
    report = evaluate_episodes(logits_from_query, [episode(one_hot_logits(fg), label, 0)],
                               num_classes=1, verbose=0)
    # fg: I = 25, U = 36. bg: I = 144 - 36 = 108, U = 119 + 108 - 108 = 119.
    assert report["miou"] == pytest.approx(25 / 36)
    assert report["fb_iou"] == pytest.approx((108 / 119 + 25 / 36) / 2)


def test_random_logits_match_a_numpy_align_corners_pipeline():
    rng = np.random.default_rng(2)
    elements, expected_episodes = [], []
    half_pixel_differs = False
    for size, side, slot in [(9, 12, 0), (9, 14, 1), (17, 12, 1)]:
        logits = rng.normal(size=(size, size, 2)).astype(np.float32)
        target = rng.choice([0, 1, 255], p=[0.45, 0.45, 0.1], size=(side, side))
        elements.append(episode(logits, target, slot))
        labels = numpy_resize_align_corners(logits.astype(np.float64), side, side).argmax(-1)
        expected_episodes.append((target, labels, slot))
        half_pixel = tf.image.resize(logits[None], (side, side)).numpy()[0].argmax(-1)
        half_pixel_differs |= bool(np.any(half_pixel != labels))
    assert half_pixel_differs  # so this test tells align_corners from TF's default
    report = evaluate_episodes(logits_from_query, elements, num_classes=3, verbose=0)
    expected = reference_scores(expected_episodes, 3)
    np.testing.assert_allclose(report["class_iou"], expected["class_iou"], rtol=1e-6)
    assert report["miou"] == pytest.approx(expected["miou"], rel=1e-6)
    assert report["fb_iou"] == pytest.approx(expected["fb_iou"], rel=1e-6)


def test_make_test_dataset_elements_with_a_progress_bar(tmp_path, capsys):
    from svf_tf.data import pipeline
    from svf_tf.data.episodes.episode_files import load_or_create_test_episodes
    from svf_tf.data.lists.fold_lists import build_fold_lists
    from svf_tf.data.synthetic.dataset import ensure_synthetic_dataset
    from svf_tf.data.transforms.presets import augment_config

    root = ensure_synthetic_dataset(str(tmp_path / "data"), num_train=20, num_val=40,
                                    min_side=128, max_side=140)
    val_lists = build_fold_lists("pascal", root, 0, "val", cache_dir=str(tmp_path / "cache"),
                                 progress=False)
    episodes = load_or_create_test_episodes(str(tmp_path / "episodes.txt"), val_lists, 1,
                                            seed=321, num_episodes=4)
    dataset = pipeline.make_test_dataset(episodes, augment_config("pascal", test_size=33))

    def predict(query_image, support_images, support_masks):
        # Any deterministic function of the inputs will do: bright pixels are "foreground".
        brightness = tf.reduce_mean(query_image, axis=-1, keepdims=True)
        return tf.concat([tf.zeros_like(brightness), brightness], axis=-1)

    report = evaluate_episodes(predict, dataset, num_classes=5, verbose=1)
    assert "4/4" in capsys.readouterr().out
    expected_episodes = []
    for element in dataset:
        logits = predict(element["query_image"], None, None).numpy()[0].astype(np.float64)
        target = element["original_mask"].numpy()[0]
        labels = numpy_resize_align_corners(logits, *target.shape).argmax(-1)
        expected_episodes.append((target, labels, int(element["class_slot"][0])))
    expected = reference_scores(expected_episodes, 5)
    assert report["episodes"] == 4
    np.testing.assert_allclose(report["class_iou"], expected["class_iou"], rtol=1e-6)
    assert report["fb_iou"] == pytest.approx(expected["fb_iou"], rel=1e-6)


def test_summarize_seeds():
    reports = [{"miou": m, "fb_iou": f, "class_iou": [m, f]}
               for m, f in [(0.60, 0.70), (0.62, 0.71), (0.58, 0.69)]]
    summary = summarize_seeds(reports)
    assert summary["seeds"] == 3
    assert summary["miou_mean"] == pytest.approx(0.60)
    assert summary["miou_std"] == pytest.approx(np.std([0.60, 0.62, 0.58]))
    assert summary["miou_max"] == pytest.approx(0.62)
    assert summary["fb_iou_mean"] == pytest.approx(0.70)
    assert summary["fb_iou_std"] == pytest.approx(np.std([0.70, 0.71, 0.69]))
    np.testing.assert_allclose(summary["class_iou_mean"], [0.60, 0.70])
    with pytest.raises(ValueError, match="at least one"):
        summarize_seeds([])
    with pytest.raises(ValueError, match="no 'fb_iou'"):
        summarize_seeds([{"miou": 0.5}])


def test_bad_predictions_and_elements_raise_with_the_fix():
    element = episode(np.zeros((9, 9, 2)), np.zeros((12, 12)), 0)
    with pytest.raises(ValueError, match=r"returned shape \(1, 9, 9, 3\)"):
        evaluate_episodes(lambda q, s, m: tf.zeros((1, 9, 9, 3)), [element], 1, verbose=0)
    with pytest.raises(ValueError, match=r"S x S = \(9, 9\)"):
        evaluate_episodes(lambda q, s, m: tf.zeros((1, 5, 5, 2)), [element], 1, verbose=0)
    with pytest.raises(ValueError, match="original_mask"):
        evaluate_episodes(logits_from_query, [{k: v for k, v in element.items()
                                               if k != "original_mask"}], 1, verbose=0)
    with pytest.raises(ValueError, match="no episode"):
        evaluate_episodes(logits_from_query, [], 1, verbose=0)
