"""`BCPTTask` on a toy backbone (one stride-8 1x1 conv) and 16 in-memory 17 px images."""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.bcpt.task import BCPTTask
from tests.runs.trainer_helpers import tiny_config

SIZE = 17  # layer4 grid 3 x 3: pixels 0, 8, 16


def toy_backbone():
    """{"layer4": ReLU(1x1 conv, stride 8)}: the grid of `labels_at_features`, D = 4."""
    image = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(4, 1, strides=8, activation="relu", name="toy_layer4")(image)
    return keras.Model(image, {"layer4": features}, name="toy_backbone")


class ToyBCPTTask(BCPTTask):
    """BCPT with everything but the objective and the step made small and file-free."""

    def __init__(self, config, log=print):
        super().__init__(config, log)
        rng = np.random.default_rng(0)
        self.images = rng.random((16, SIZE, SIZE, 3)).astype("float32")
        # Background (0) where the first channel is low, base classes 1..3 by the others.
        labels = 1 + np.argmax(self.images[..., 1:], axis=-1) + (self.images[..., 0] > 0.7)
        labels[self.images[..., 0] < 0.45] = 0
        labels[:, 0, 0] = 255
        self.labels = labels.astype("int32")

    def num_train_images(self):
        return len(self.images)

    def train_dataset(self, epoch):
        data = tf.data.Dataset.from_tensor_slices({"image": self.images, "label": self.labels})
        return data.shuffle(16, seed=self.config.run.seed + epoch).batch(
            self.config.optim.batch_size)

    def build_backbone(self):
        return toy_backbone()

    def make_validation(self, model):
        def validate():
            predicted = np.argmax(model.segmentation_logits(self.images), axis=-1)
            valid = self.labels != 255
            return {"miou": float(np.mean(predicted[valid] == self.labels[valid])),
                    "background_iou": 0.0}
        return validate

    def data_fingerprint(self):
        return {}


def toy_bcpt_config(work_dir, **overrides):
    settings = {"method": "bam", "mode": "pretrain", "train_size": SIZE, "test_size": SIZE,
                "epochs": 2, "steps_per_epoch": 0, "batch_size": 4, "lr": 0.1,
                "lr_schedule": "constant", "bcpt_clusters": 3, "bcpt_momentum": 0.5,
                "bcpt_kmeans_iterations": 3,
                **overrides}
    return tiny_config(str(work_dir / "cache"), work_dir / "run", **settings)
