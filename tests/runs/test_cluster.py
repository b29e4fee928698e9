"""Multi-worker pieces in one process: input sharding, evaluation split, settings agreement."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.metrics.distributed_evaluation import (
    evaluate_episodes_distributed,
    replica_episodes,
)
from svf_tf.metrics.evaluation import evaluate_episodes
from svf_tf.runs.cluster import agree_on_start, settings_digest, shard_global_batches, worker_count
from svf_tf.tasks.few_shot import FewShotTask
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
    task = FewShotTask(tiny_config(synthetic_cache, tmp_path / "run", test_episodes=5),
                       log=lambda *_: None)

    def predict(query_image, support_images, support_masks):
        red = query_image[..., :1]
        return tf.concat([tf.zeros_like(red), red - tf.reduce_mean(red)], axis=-1)

    reference = evaluate_episodes(predict, task.test_dataset(321)[0], task.num_novel, verbose=0)
    assert reference["episodes"] == 5
    for strategy in (tf.distribute.get_strategy(), two_replica_strategy()):
        report = evaluate_episodes_distributed(
            predict, lambda indices: task.test_dataset(321, indices)[0], 5, task.num_novel,
            strategy)
        for key in ("miou", "fb_iou", "class_iou", "class_episodes", "episodes"):
            assert report[key] == reference[key], (strategy, key)


def test_a_single_worker_needs_no_agreement():
    strategy = tf.distribute.get_strategy()
    assert worker_count(strategy) == 1
    agree_on_start(strategy, None)  # nothing to agree with: no collective, no error
    assert settings_digest({"a": 1, "b": [2]}) == settings_digest({"b": [2], "a": 1})
    assert settings_digest({"a": 1}) != settings_digest({"a": 2})
