"""A BCPT training step: what moves and how, replicas, resume (toy backbone, in-memory data)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.runs.checkpointing import TrainingCheckpoint
from svf_tf.runs.trainer import run_training
from tests.bcpt.toy_bcpt import ToyBCPTTask, toy_bcpt_config
from tests.helpers import two_replica_strategy

DEFAULT = tf.distribute.get_strategy
QUIET = {"log": lambda *_: None}


def np_step_centres(embeddings, labels, centres, mu):
    """Eq. 1 in NumPy on the background pixels of a batch (labels at the layer4 grid)."""
    e = embeddings.reshape(-1, embeddings.shape[-1])[labels.reshape(-1) == 0]
    assignment = (e @ centres).argmax(axis=1)
    updated = centres.copy()
    for k in range(centres.shape[1]):
        if (assignment == k).any():
            p_hat = e[assignment == k].sum(0)
            updated[:, k] = (mu * centres[:, k] / np.linalg.norm(centres[:, k])
                             + (1 - mu) * p_hat / np.linalg.norm(p_hat))
    return updated


def test_a_step_trains_backbone_and_w_and_moves_centres_only_by_eq1(tmp_path):
    task = ToyBCPTTask(toy_bcpt_config(tmp_path, bcpt_guidance="none"), **QUIET)
    model = task.build_model()
    optimizer = task.build_optimizer(model, 10)
    centres = model.state.centres
    assert all(v is not centres for v in model.trainable_variables)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    images, labels = task.images[:4], task.labels[:4]
    embeddings = model(images)["embeddings"].numpy()
    expected = np_step_centres(embeddings, labels[:, ::8, ::8], centres.numpy(), 0.5)
    losses = task.make_train_step(model, optimizer, DEFAULT())(
        {"image": tf.constant(images), "label": tf.constant(labels)})
    assert set(losses) == {"loss", "base_loss", "bm_loss"}
    after = {v.path: v.numpy() for v in model.trainable_variables}
    for path in ("toy_layer4", "bcpt_projection"):
        changed = [p for p in after if path in p and not np.allclose(after[p], before[p])]
        assert changed, f"{path} did not train"
    np.testing.assert_allclose(centres.numpy(), expected, rtol=1e-5, atol=1e-6)


def checkpoint_state(config):
    """Centres, guidance, k-means start and W of the newest checkpoint of a toy run."""
    model = ToyBCPTTask(config, **QUIET).build_model()
    TrainingCheckpoint(config.run_dir, model).restore(os.path.join(config.run_dir, "latest"))
    state = model.state
    return {"centres": state.centres.numpy(), "guidance": state.guidance.numpy(),
            "kmeans_start": state.kmeans_start.numpy(), "w": model.class_vectors.numpy()}


def run_steps(config, strategy, steps=2):
    """`steps` BCPT steps of `config` under `strategy`: (losses, centres, guidance, W)."""
    task = ToyBCPTTask(config, **QUIET)
    keras.utils.set_random_seed(config.run.seed)
    with strategy.scope():
        model = task.build_model()
        optimizer = task.build_optimizer(model, steps)
    step = task.make_train_step(model, optimizer, strategy)
    batches = strategy.experimental_distribute_dataset(task.train_dataset(0).take(steps))
    losses = [{name: float(value) for name, value in step(batch).items()} for batch in batches]
    return losses, {"centres": model.state.centres.numpy(),
                    "guidance": model.state.guidance.numpy(),
                    "w": model.class_vectors.numpy()}


def test_one_and_two_replicas_give_the_same_centres_and_losses(tmp_path):
    # Toy images have one ignored pixel each, but Eq. 4 is normalised by the global
    # pixel counts, so the halves need not weigh the same.
    one = run_steps(toy_bcpt_config(tmp_path / "one"), DEFAULT())
    two = run_steps(toy_bcpt_config(tmp_path / "two"), two_replica_strategy())
    for a, b in zip(one[0], two[0], strict=True):
        for name in a:
            assert b[name] == pytest.approx(a[name], rel=1e-5), name
    for key, value in one[1].items():
        np.testing.assert_allclose(two[1][key], value, rtol=1e-4, atol=1e-6, err_msg=key)
    assert np.abs(one[1]["guidance"]).sum() > 0  # guidance ran


def test_killed_run_resumes_to_the_same_centres(tmp_path, monkeypatch):
    straight = toy_bcpt_config(tmp_path / "straight")
    run_training(ToyBCPTTask(straight, **QUIET), DEFAULT(), checkpoint_every=2, **QUIET)
    killed = toy_bcpt_config(tmp_path / "killed")
    original, calls = ToyBCPTTask.make_train_step, {"n": 0}

    def dying(self, *args):
        step = original(self, *args)

        def wrapped(batch):
            calls["n"] += 1
            if calls["n"] == 7:  # epoch 1, batch 2: after the mid-epoch checkpoint at step 6
                raise KeyboardInterrupt("killed")
            return step(batch)
        return wrapped

    monkeypatch.setattr(ToyBCPTTask, "make_train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        run_training(ToyBCPTTask(killed, **QUIET), DEFAULT(), checkpoint_every=2, **QUIET)
    monkeypatch.setattr(ToyBCPTTask, "make_train_step", original)
    lines = []
    run_training(ToyBCPTTask(killed, **QUIET), DEFAULT(), checkpoint_every=2,
                 log=lines.append)
    assert any("resumed from" in line for line in lines)
    a, b = checkpoint_state(straight), checkpoint_state(killed)
    for key, value in a.items():
        np.testing.assert_allclose(b[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("settings, message", [
    ({"bcpt_clusters": 1}, "clusters=1 is not accepted: give an integer >= 2"),
    ({"bcpt_momentum": 1.0}, r"momentum=1.0 is not accepted: give a number in \[0, 1\)"),
    ({"bcpt_momentum": -0.1}, "momentum=-0.1 is not accepted"),
    ({"bcpt_alpha": -1.0}, "alpha=-1.0 is not accepted: give a number >= 0"),
])
def test_bad_settings_are_refused_in_one_line(settings, message):
    with pytest.raises(ValueError, match=message) as error:
        ExperimentConfig.from_settings(**settings)
    assert "\n" not in str(error.value)


def test_more_guidance_vectors_than_base_classes_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"--bcpt_clusters=17 .* 15 base classes; give "
                                         r"--bcpt_clusters <= 16 or --bcpt_guidance=none"):
        ToyBCPTTask(toy_bcpt_config(tmp_path, bcpt_clusters=17))
    ToyBCPTTask(toy_bcpt_config(tmp_path, bcpt_clusters=17, bcpt_guidance="none"))


@pytest.mark.parametrize("task", ["standard", "bcpt"])
def test_another_method_is_refused_naming_the_mode_that_was_run(task, tmp_path):
    from svf_tf.bcpt.task import BCPTTask, StandardPretrainTask

    cls = {"standard": StandardPretrainTask, "bcpt": BCPTTask}[task]
    with pytest.raises(ValueError, match=r"^--mode=pretrain trains BAM's stage-1 network .*"
                                         r"--method must be bam, not 'baseline'\.$"):
        cls(toy_bcpt_config(tmp_path, method="baseline"), log=lambda *_: None)
