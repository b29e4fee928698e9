"""The Task protocol: what the shared loop may call, and that it is enough to train anything."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.models.losses import masked_cross_entropy
from svf_tf.runs.restore import restore_model
from svf_tf.runs.trainer import run_training
from svf_tf.tasks.base_learner import BaseLearnerTask
from svf_tf.tasks.few_shot import FewShotTask
from svf_tf.tasks.task import Task
from tests.runs.trainer_helpers import tiny_config


class ToyTask(Task):
    """Pixel classification (label: first channel > 0.5) by one 1x1 conv; no backbone, no files."""

    mode = "toy"
    metric_names = {"miou": "val accuracy"}
    label_key = "label"

    def __init__(self, config, log=print):
        super().__init__(config, log)
        rng = np.random.default_rng(0)
        self.images = rng.random((16, 5, 5, 3)).astype("float32")
        self.labels = (self.images[..., 0] > 0.5).astype("int32")
        self.labels[:, 0, 0] = 255  # an ignored pixel in every image
        self.best_calls = []

    def num_train_images(self):
        return len(self.images)

    def train_dataset(self, epoch):
        data = tf.data.Dataset.from_tensor_slices({"image": self.images, "label": self.labels})
        return data.shuffle(16, seed=self.config.run.seed + epoch).batch(
            self.config.optim.batch_size)

    def build_model(self):
        inputs = keras.Input((None, None, 3))
        return keras.Model(inputs, keras.layers.Conv2D(2, 1, name="toy_conv")(inputs))

    def compute_losses(self, model, batch):
        return {"loss": masked_cross_entropy(model(batch["image"], training=True),
                                             batch["label"])}

    def make_predict_fn(self, model):
        return lambda images: model(images, training=False)

    def describe(self, svf_trainable, other_trainable, steps_per_epoch, replicas):
        return f"toy: {other_trainable} values, {steps_per_epoch} steps"

    def make_validation(self, model):
        def validate():
            predicted = np.argmax(self.make_predict_fn(model)(self.images), axis=-1)
            valid = self.labels != 255
            return {"miou": float(np.mean(predicted[valid] == self.labels[valid]))}
        return validate

    def on_new_best(self, model, run_dir):
        self.best_calls.append(run_dir)


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


def toy_config(tmp_path, **overrides):
    return tiny_config(str(tmp_path / "cache"), tmp_path / "run",
                       **{"epochs": 3, "steps_per_epoch": 0, "batch_size": 4, "lr": 0.5,
                          "lr_schedule": "constant", **overrides})


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
