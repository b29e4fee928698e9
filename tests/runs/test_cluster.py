"""Multi-worker pieces in one process: input sharding, evaluation split, settings agreement."""

import re

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.data.sharding import shard_global_batches, worker_elements
from svf_tf.metrics.base_class_iou import evaluate_base_classes
from svf_tf.metrics.distributed_evaluation import (
    evaluate_episodes_distributed,
    replica_episodes,
)
from svf_tf.metrics.evaluation import evaluate_episodes
from svf_tf.runs.cluster import agree_on_start, settings_digest, worker_count
from svf_tf.runs.strategy import check_tf_config
from svf_tf.tasks.base_learner import BaseLearnerTask
from svf_tf.tasks.few_shot import FewShotTask
from svf_tf.tasks.synthetic_pretrain import SyntheticPretrainTask
from tests.helpers import two_replica_strategy
from tests.runs.trainer_helpers import tiny_config


@pytest.mark.parametrize("workers,local", [(1, 1), (1, 2), (2, 1), (2, 2), (3, 2)])
def test_sharded_pipelines_split_every_global_batch_once(workers, local):
    global_batch, steps = 12, 3
    replicas = workers * local
    batches = tf.data.Dataset.range(global_batch * steps).batch(global_batch, drop_remainder=True)
    per_worker = []
    for worker in range(workers):
        context = tf.distribute.InputContext(workers, worker, replicas)
        per_worker.append([b.numpy() for b in shard_global_batches(batches, global_batch,
                                                                   context)])
        # What a pipeline that loads only its own elements selects (global step 0 skipped).
        np.testing.assert_array_equal(worker_elements(steps, global_batch, context, skip=1),
                                      np.concatenate(per_worker[-1][local:]))
    per_replica = global_batch // replicas
    for step in range(steps):
        # Replica l of worker w takes the (w * L + l)-th slice of the global batch.
        parts = [per_worker[w][step * local + r] for w in range(workers) for r in range(local)]
        assert all(len(part) == per_replica for part in parts)
        np.testing.assert_array_equal(np.concatenate(parts),
                                      np.arange(step * global_batch, (step + 1) * global_batch))
    assert all(len(batches_of_w) == steps * local for batches_of_w in per_worker)


@pytest.mark.parametrize("episodes,workers,local", [(6, 1, 1), (6, 2, 2), (7, 2, 1), (5, 3, 2)])
def test_test_episodes_are_split_once_over_every_replica(episodes, workers, local):
    seen, lengths = [], set()
    for worker in range(workers):
        indices, weights = replica_episodes(episodes, workers * local, local, worker)
        seen += [int(i) for i, w in zip(indices, weights, strict=True) if w == 1]
        assert set(indices[weights == 0]) <= {0}
        lengths.add(len(indices))
    assert sorted(seen) == list(range(episodes)) and len(lengths) == 1


def test_evaluation_on_one_and_two_replicas_gives_the_counts_of_one_process(synthetic_cache,
                                                                            tmp_path):
    task = FewShotTask(tiny_config(synthetic_cache, tmp_path / "run", test_episodes=4),
                       log=lambda *_: None)

    def predict(query_image, support_images, support_masks):
        red = query_image[..., :1]
        return tf.concat([tf.zeros_like(red), red - tf.reduce_mean(red)], axis=-1)

    reference = evaluate_episodes(predict, task.test_dataset(321)[0], task.num_novel, verbose=0)
    assert reference["episodes"] == 4
    for strategy in (tf.distribute.get_strategy(), two_replica_strategy()):
        report = evaluate_episodes_distributed(
            predict, lambda indices: task.test_dataset(321, indices)[0], 4, task.num_novel,
            strategy)
        for key in ("miou", "fb_iou", "class_iou", "class_episodes", "episodes"):
            assert report[key] == reference[key], (strategy, key)


@pytest.mark.slow  # decodes the validation images three times
def test_base_class_validation_on_two_replicas_gives_the_report_of_one_process(synthetic_cache,
                                                                               tmp_path):
    task = BaseLearnerTask(tiny_config(synthetic_cache, tmp_path / "run", method="bam",
                                       val_images=5, batch_size=2))
    mixing = tf.constant(np.random.default_rng(0).normal(size=(3, task.num_classes)),
                         tf.float32)
    task.make_predict_fn = lambda model: lambda images: tf.einsum("bhwc,ck->bhwk", images,
                                                                  mixing)
    # One process: batches of 2, the last one short (BAM's stage-1 validation).
    reference = evaluate_base_classes(task.make_predict_fn(None), task.val_dataset())
    assert reference["images"] == 5 and sum(v > 0 for v in reference["class_iou"]) > 1
    for strategy in (tf.distribute.get_strategy(), two_replica_strategy()):
        assert task.make_distributed_validation(None, strategy)() == reference, strategy


@pytest.mark.slow  # renders the held-out corpus images three times
def test_synthetic_pretraining_validation_on_two_replicas_gives_the_report_of_one_process(
        tmp_path):
    task = SyntheticPretrainTask(ExperimentConfig.from_settings(
        mode="pretrain_synthetic", backbone="vgg16", vgg_batch_norm=True, train_size=33,
        batch_size=3, pretrain_val_images=8, cache_dir=str(tmp_path)))
    task.make_predict_fn = lambda model: lambda images: tf.clip_by_value(
        tf.cast(tf.round(images[..., 0] * 3), tf.int32), 0, 100)
    reference = task.make_validation(None)()  # batches of 3: images 0..5, 6 and 7 dropped
    assert 0 < reference["miou"] < 1 and 0 < reference["accuracy"] < 1
    for strategy in (tf.distribute.get_strategy(), two_replica_strategy()):
        assert task.make_distributed_validation(None, strategy)() == reference, strategy


def test_a_single_worker_needs_no_agreement():
    strategy = tf.distribute.get_strategy()
    assert worker_count(strategy) == 1
    agree_on_start(strategy, None)  # nothing to agree with: no collective, no error
    assert settings_digest({"a": 1, "b": [2]}) == settings_digest({"b": [2], "a": 1})
    assert settings_digest({"a": 1}) != settings_digest({"a": 2})


@pytest.mark.slow  # loads 2 x 9 training episodes; the selection is tested above in NumPy
def test_a_workers_few_shot_episodes_are_those_of_one_process(synthetic_cache, tmp_path):
    task = FewShotTask(tiny_config(synthetic_cache, tmp_path / "run", batch_size=4,
                                   steps_per_epoch=3), log=lambda *_: None)
    whole = list(task.train_dataset(1))
    for workers, local in ((2, 1), (2, 2)):
        mine = [list(task.worker_train_dataset(1, 1, tf.distribute.InputContext(
            workers, worker, workers * local))) for worker in range(workers)]
        for step, batch in enumerate(whole[1:]):  # global step 0 skipped (a resumed epoch)
            parts = [mine[w][step * local + r] for w in range(workers) for r in range(local)]
            for key in ("query_image", "support_masks", "class_id"):
                np.testing.assert_array_equal(
                    np.concatenate([part[key].numpy() for part in parts]), batch[key].numpy())


@pytest.mark.parametrize("text,words", [
    ("{bad", "TF_CONFIG is not JSON"),
    ('{"cluster": {}}', 'no "cluster" with "worker" addresses'),
    ('{"cluster": {"worker": ["a:1"]}}', 'no "task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "'worker' 3 is not in its cluster"),
])
def test_a_malformed_tf_config_is_one_line_naming_the_fix(text, words):
    with pytest.raises(ValueError, match=re.escape(words)) as error:
        check_tf_config(text)
    assert "\n" not in str(error.value) and ("TF_CONFIG to JSON" in str(error.value)
                                             or "index, 0 to" in str(error.value))
    check_tf_config('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", '
                    '"index": 1}}')
