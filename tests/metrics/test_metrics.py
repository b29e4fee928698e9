"""FewShotMeanIoU, FBIoU and the count function against the NumPy reference formula."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.metrics.fb_iou import FBIoU
from svf_tf.metrics.few_shot_mean_iou import FewShotMeanIoU
from svf_tf.metrics.iou_counts import few_shot_iou_counts
from tests.helpers import two_replica_strategy
from tests.metrics.iou_reference import reference_scores


def random_batch(rng, batch, size=7, num_classes=5, slots=None):
    """Targets in {0, 1, 255}, 2-channel logits and slots."""
    target = rng.choice([0, 1, 255], p=[0.5, 0.35, 0.15], size=(batch, size, size))
    logits = rng.normal(size=(batch, size, size, 2)).astype(np.float32)
    if slots is None:
        slots = rng.integers(0, num_classes, size=batch)
    return target.astype(np.int32), logits, np.asarray(slots, np.int32)


def update_both(miou, fb, target, pred, slots):
    miou.update_state(target, pred, class_ids=slots)
    fb.update_state(target, pred)


def test_matches_reference_over_several_batches_with_an_unseen_slot():
    rng = np.random.default_rng(0)
    miou, fb = FewShotMeanIoU(5), FBIoU()
    episodes = []
    for _ in range(3):
        # Slot 3 is never sampled: it must count as 0 in the mean.
        target, logits, slots = random_batch(rng, 4, slots=rng.choice([0, 1, 2, 4], size=4))
        update_both(miou, fb, target, logits, slots)
        labels = logits.argmax(-1)
        episodes += list(zip(target, labels, slots, strict=True))
    expected = reference_scores(episodes, 5)
    assert expected["class_iou"][3] == 0
    np.testing.assert_allclose(miou.per_class_iou().numpy(), expected["class_iou"], rtol=1e-6)
    np.testing.assert_allclose(float(miou.result()), expected["miou"], rtol=1e-6)
    np.testing.assert_allclose(float(fb.result()), expected["fb_iou"], rtol=1e-6)
    np.testing.assert_array_equal(miou.episodes_per_class().numpy(),
                                  np.bincount([s for *_, s in episodes], minlength=5))


def test_episodes_of_a_class_are_summed_before_dividing():
    # Slot 0: episode A has I=1, U=1 (IoU 1), episode B has I=0, U=9 (IoU 0).
    # Pooled IoU = 1/10; the mean of per-episode IoUs would be 1/2.
    target = np.zeros((2, 3, 3), np.int32)
    pred = np.zeros((2, 3, 3), np.int32)
    target[0, 0, 0] = pred[0, 0, 0] = 1
    target[1, :2, :] = 1   # 6 fg target pixels
    pred[1, 2, :] = 1      # 3 fg predicted elsewhere: I=0, U=9
    miou = FewShotMeanIoU(2)
    miou.update_state(target, pred, class_ids=[0, 0])
    expected = reference_scores(zip(target, pred, [0, 0], strict=True), 2)
    np.testing.assert_allclose(miou.per_class_iou().numpy(), [0.1, 0.0], rtol=1e-6)
    np.testing.assert_allclose(float(miou.result()), expected["miou"], rtol=1e-6)
    assert abs(float(miou.result()) - 0.05) < 1e-7  # not (1 + 0) / 2 / 2 = 0.25


def test_ignore_pixels_do_not_count_even_if_predicted_foreground():
    target = np.full((1, 4, 4), 255, np.int32)
    target[0, 0, :2] = [1, 0]
    pred = np.ones((1, 4, 4), np.int32)  # foreground everywhere, incl. the 14 ignored pixels
    miou, fb = FewShotMeanIoU(1), FBIoU()
    update_both(miou, fb, target, pred, [0])
    # fg: I=1, U=2 (pred fg on the one bg pixel); bg: I=0, U=1.
    np.testing.assert_allclose(miou.per_class_iou().numpy(), [0.5], rtol=1e-6)
    np.testing.assert_allclose(fb.per_class_iou().numpy(), [0.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(float(fb.result()), 0.25, rtol=1e-6)


def test_logits_and_labels_give_the_same_counts():
    target, logits, slots = random_batch(np.random.default_rng(1), 3)
    from_logits = few_shot_iou_counts(target, logits, slots, 5)
    from_labels = few_shot_iou_counts(target, logits.argmax(-1), slots, 5)
    for key, value in from_logits.items():
        assert value.dtype == tf.float64
        np.testing.assert_array_equal(value.numpy(), from_labels[key].numpy(), err_msg=key)


def test_update_state_in_a_tf_function():
    target, logits, slots = random_batch(np.random.default_rng(2), 4)
    eager, graph = FewShotMeanIoU(5), FewShotMeanIoU(5)
    eager.update_state(target, logits, slots)
    tf.function(graph.update_state)(target, logits, slots)
    np.testing.assert_array_equal(graph.per_class_iou().numpy(), eager.per_class_iou().numpy())


def test_reset_state_starts_over():
    rng = np.random.default_rng(3)
    first, second = random_batch(rng, 4), random_batch(rng, 4)
    miou, fb = FewShotMeanIoU(5), FBIoU()
    update_both(miou, fb, *first)
    miou.reset_state()
    fb.reset_state()
    assert float(miou.result()) == 0.0 and float(fb.result()) == 0.0
    update_both(miou, fb, *second)
    fresh_miou, fresh_fb = FewShotMeanIoU(5), FBIoU()
    update_both(fresh_miou, fresh_fb, *second)
    assert float(miou.result()) == float(fresh_miou.result())
    assert float(fb.result()) == float(fresh_fb.result())


@pytest.mark.parametrize("metric", [FewShotMeanIoU(20, ignore_label=254, name="m"),
                                    FBIoU(ignore_label=254, name="fb")])
def test_get_config_round_trip(metric):
    config = metric.get_config()
    rebuilt = type(metric).from_config(config)
    assert rebuilt.get_config() == config
    serialized = keras.saving.serialize_keras_object(metric)
    json.dumps(serialized)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(metric) and restored.get_config() == config


def test_ignore_label_argument_is_used():
    target = np.array([[[1, 254]]], np.int32)
    pred = np.array([[[1, 1]]], np.int32)
    miou = FewShotMeanIoU(1, ignore_label=254)
    miou.update_state(target, pred, [0])
    np.testing.assert_allclose(float(miou.result()), 1.0, rtol=1e-6)


def test_bad_inputs_raise_with_the_value():
    target, logits, _ = random_batch(np.random.default_rng(4), 2)
    miou = FewShotMeanIoU(5)
    with pytest.raises(ValueError, match=r"\[0, 5\); got \[5\]"):
        miou.update_state(target, logits, [0, 5])
    with pytest.raises(ValueError, match="same"):
        miou.update_state(target[:, :5], logits, [0, 1])
    with pytest.raises(ValueError, match=r"\[B, H, W, 2\]"):
        miou.update_state(target, np.zeros((2, 7, 7, 3)), [0, 1])
    with pytest.raises(ValueError, match="sample_weight"):
        FBIoU().update_state(target, logits, sample_weight=np.ones(2))
    with pytest.raises(ValueError, match="num_classes=0"):
        FewShotMeanIoU(0)
    with pytest.raises(ValueError, match=r"shape \[5\]"):
        miou.update_from_counts(few_shot_iou_counts(target, logits, [0, 1], 4))


def test_one_and_two_replicas_give_identical_values():
    rng = np.random.default_rng(5)
    batches = [random_batch(rng, 4, size=9) for _ in range(3)]
    single_miou, single_fb = FewShotMeanIoU(5), FBIoU()
    for batch in batches:
        counts = few_shot_iou_counts(*batch, num_classes=5)
        single_miou.update_from_counts(counts)
        single_fb.update_from_counts(counts)

    strategy = two_replica_strategy()
    with strategy.scope():  # metrics made in the scope still take cross-replica counts
        dist_miou, dist_fb = FewShotMeanIoU(5), FBIoU()
    dataset = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(parts) for parts in
                                                       zip(*batches, strict=True))).batch(4)
    replica_counts = tf.function(lambda t, p, s: few_shot_iou_counts(t, p, s, num_classes=5))
    seen = []
    for target, logits, slots in strategy.experimental_distribute_dataset(dataset):
        per_replica = strategy.run(replica_counts, args=(target, logits, slots))
        seen.append([tuple(v.shape) for v in per_replica["class_union"].values])
        counts = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        dist_miou.update_from_counts(counts)
        dist_fb.update_from_counts(counts)
    assert seen == [[(5,), (5,)]] * 3  # two replicas really ran
    np.testing.assert_array_equal(dist_miou.per_class_iou().numpy(),
                                  single_miou.per_class_iou().numpy())
    assert float(dist_miou.result()) == float(single_miou.result())
    assert float(dist_fb.result()) == float(single_fb.result())
    episodes = [e for target, logits, slots in batches
                for e in zip(target, logits.argmax(-1), slots, strict=True)]
    np.testing.assert_allclose(float(dist_miou.result()), reference_scores(episodes, 5)["miou"],
                               rtol=1e-6)
