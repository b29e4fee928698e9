"""A toy `Task` (one 1x1 conv, no files) shared by the task and trainer tests."""


import keras
import numpy as np
import tensorflow as tf

from svf_tf.models.losses import masked_cross_entropy
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


def toy_config(tmp_path, **overrides):
    return tiny_config(str(tmp_path / "cache"), tmp_path / "run",
                       **{"epochs": 3, "steps_per_epoch": 0, "batch_size": 4, "lr": 0.5,
                          "lr_schedule": "constant", **overrides})
