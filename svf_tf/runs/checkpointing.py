"""Training checkpoints: resumable state, plus the best model kept apart.

A checkpoint holds every variable of the model (weights, BatchNorm
statistics, SVF factors and the dropout RNG states), every variable of the
optimizer (iteration count, momentum buffers), the global step, the epoch and
the position inside it (the data pipeline is a function of (seed, epoch,
episode index), so that is all the data state).

The variables are saved as lists in graph order, not through the model
object: `tf.train.Checkpoint(model=...)` follows TensorFlow's object graph,
which misses Keras 3 `SeedGenerator` states and the weights of some
sublayers of custom layers (the dilated branches of our ASPP were silently
left at their initial values on restore). Lists are complete by
construction, and a model with another architecture fails to restore
instead of restoring in part.

`latest/` keeps the last few checkpoints (resume); `best/` keeps the one
with the best validation mIoU, next to its SVF adapter file.
"""

import json
import os

import tensorflow as tf


class TrainingCheckpoint:
    """Saves and restores the full training state.

    Args:
        directory: the run's work directory (checkpoints go to `latest/` and
            `best/` under it).
        model: the Keras model.
        optimizer: the optimizer (None for evaluation only).
        max_to_keep: how many recent checkpoints to keep.
    """

    def __init__(self, directory, model, optimizer=None, max_to_keep=2):
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name="step_in_epoch")
        # Graph order: the same for every build of an architecture (names are not:
        # Keras numbers layers and seed generators with process-wide counters).
        objects = {"model_variables": list(model.variables), "step": self.step,
                   "epoch": self.epoch, "step_in_epoch": self.step_in_epoch}
        if optimizer is not None:
            objects["optimizer_variables"] = list(optimizer.variables)
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.latest = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(directory, "latest"), max_to_keep=max_to_keep)
        self.best = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(directory, "best"), max_to_keep=1)
        self.best_record = os.path.join(directory, "best", "best.json")

    def restore_latest(self):
        """Restores the newest checkpoint if there is one; returns its path or None."""
        path = self.latest.latest_checkpoint
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def restore(self, path):
        """Restores model weights (and whatever else matches) from `path`.

        Raises:
            FileNotFoundError: no checkpoint at `path`.
            ValueError: the checkpoint does not match the model.
        """
        if os.path.isdir(path):
            path = tf.train.latest_checkpoint(path) or path
        if not tf.io.gfile.exists(path + ".index"):
            raise FileNotFoundError(
                f"No checkpoint at {path!r}: give a checkpoint prefix (…/ckpt-12) or a "
                "directory holding one (e.g. <work_dir>/best).")
        try:
            self.checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise ValueError(
                f"Checkpoint {path!r} does not match this model ({str(error).splitlines()[0]}); "
                "use the same --method, --backbone, --shot and fine-tuning flags as the run "
                "that wrote it (its flags.txt lists them).") from None
        return path

    def save(self, epoch, step_in_epoch):
        self.epoch.assign(epoch)
        self.step_in_epoch.assign(step_in_epoch)
        return self.latest.save(checkpoint_number=int(self.step.numpy()))

    def best_miou(self):
        if os.path.isfile(self.best_record):
            with open(self.best_record) as f:
                return json.load(f)["miou"]
        return None

    def save_best(self, miou, epoch, extra=None):
        """Saves the current state as the best one, with a small JSON record."""
        path = self.best.save(checkpoint_number=int(self.step.numpy()))
        record = {"miou": float(miou), "epoch": int(epoch), "step": int(self.step.numpy()),
                  "checkpoint": path, **(extra or {})}
        with open(self.best_record, "w") as f:
            json.dump(record, f, indent=2)
        return path
