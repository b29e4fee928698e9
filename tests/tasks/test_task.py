"""The Task protocol: what the shared loop may call, and that it is enough to train anything."""

import json

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.runs.restore import restore_model
from svf_tf.runs.trainer import run_training
from svf_tf.tasks.base_learner import BaseLearnerTask
from svf_tf.tasks.few_shot import FewShotTask
from svf_tf.tasks.task import Task
from tests.tasks.toy_task import ToyTask, toy_config


def test_task_is_abstract_and_names_what_is_missing():
    with pytest.raises(TypeError, match="abstract"):
        Task(None)

    class Incomplete(Task):
        mode = "incomplete"

        def num_train_images(self):
            return 1

    with pytest.raises(TypeError, match="build_model"):
        Incomplete(None)


def test_few_shot_and_stage1_tasks_are_siblings():
    for cls in (FewShotTask, BaseLearnerTask):
        assert issubclass(cls, Task)
        assert not getattr(cls, "__abstractmethods__", None)
    assert not issubclass(BaseLearnerTask, FewShotTask)
    assert not issubclass(FewShotTask, BaseLearnerTask)
    assert FewShotTask.mode == "train" and BaseLearnerTask.mode == "train_base"


def test_the_loop_trains_any_task_through_the_protocol_alone(tmp_path):
    config = toy_config(tmp_path)
    task = ToyTask(config, log=lambda *_: None)
    before = task.make_validation(task.build_model())()["miou"]
    summary = run_training(task, tf.distribute.get_strategy(), log=lambda *_: None)

    assert summary["mode"] == "toy" and summary["steps"] == 3 * 16 // 4
    assert summary["other_trainable_values"] == 3 * 2 + 2  # the 1x1 conv's kernel and bias
    assert summary["svf_trainable_values"] == 0
    losses = [record["loss"] for record in summary["history"]]
    assert losses[-1] < losses[0]
    assert summary["best_miou"] > max(before, 0.8)  # a linearly separable rule is learned
    assert task.best_calls and set(task.best_calls) == {config.run_dir}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["mode"] == "toy"


def test_restore_model_rebuilds_and_restores_the_best_checkpoint(tmp_path):
    config = toy_config(tmp_path, epochs=2)
    summary = run_training(ToyTask(config, log=lambda *_: None), tf.distribute.get_strategy(),
                           log=lambda *_: None)
    model, path = restore_model(ToyTask(config))
    assert path == summary["best_checkpoint"]
    reader = tf.train.load_checkpoint(path)
    saved = {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
             if name.startswith("model_variables")}
    kernel = next(v for k, v in saved.items() if v.shape == (1, 1, 3, 2))
    np.testing.assert_array_equal(model.get_layer("toy_conv").kernel.numpy(), kernel)


def test_restore_model_without_a_best_checkpoint_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train first \(--mode=toy"):
        restore_model(ToyTask(toy_config(tmp_path)))
