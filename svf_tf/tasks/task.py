"""`Task`: the interface between the shared training loop and one kind of training.

The loop (`svf_tf.runs.trainer.run_training`) owns what every run does:
strategy scope, resume, the step loop, progress bar, summaries, checkpoints,
early stopping and `summary.json`. A task owns what one kind of training
means (Model Garden's Task): its data, model, optimizer, loss, validation
and the files a new best model writes. `FewShotTask` (episodic
meta-training, `--mode=train`) and `BaseLearnerTask` (BAM's stage 1,
`--mode=train_base`) are siblings implementing it.

A new kind of training is a new subclass: implement the abstract methods and
override the hooks whose defaults do not fit.
"""

import abc
import math
import os

import keras
import numpy as np
import tensorflow as tf

from svf_tf.constants import IGNORE_LABEL
from svf_tf.data.sharding import shard_global_batches
from svf_tf.data.synthetic.dataset import ensure_synthetic_dataset
from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.optim.lr_schedules import make_lr_schedule
from svf_tf.optim.sgd import TorchSGD
from svf_tf.surgery.layer_paths import iter_layers

#: Prefix of the entries of a training step's result that are counts, not losses.
COUNT_PREFIX = "count/"


class Task(abc.ABC):
    """One kind of training, described by an `ExperimentConfig`.

    Args:
        config: the run's `ExperimentConfig`.
        log: callable taking one line of text.
    """

    #: The `--mode` this task trains for (the run summary's "mode").
    mode: str
    #: Validation report keys recorded per epoch, with their log labels;
    #: "miou" selects the best checkpoint.
    metric_names: dict
    #: The batch key of the training labels (the loss averages over its valid pixels).
    label_key: str

    def __init__(self, config, log=print):
        self.config = config
        self.log = log
        self._data_root = None

    # Data.
    @property
    def data_root(self):
        """The dataset directory, resolved (and the synthetic one generated) on first use."""
        if self._data_root is None:
            self._data_root = self._resolve_data_root()
        return self._data_root

    def _resolve_data_root(self):
        config = self.config.data
        if not config.synthetic and not config.data_root:
            raise ValueError(
                "No dataset: give --data_root (VOCdevkit/VOC2012 for Pascal, the COCO 2014 "
                "folder for COCO) or --synthetic for the built-in synthetic dataset.")
        if config.synthetic:
            root = None if config.cache_dir is None else os.path.join(config.cache_dir,
                                                                      "synthetic_pascal")
            return ensure_synthetic_dataset(root)
        if not os.path.isdir(config.data_root):
            raise FileNotFoundError(
                f"Dataset root {config.data_root!r} does not exist; point --data_root at "
                "VOCdevkit/VOC2012 (Pascal) or the COCO 2014 folder, or use --synthetic.")
        return config.data_root

    @abc.abstractmethod
    def num_train_images(self):
        """Training samples per epoch (before the --steps_per_epoch cap)."""

    def steps_per_epoch(self):
        """Steps of one epoch: whole batches of the training samples, capped by the config."""
        optim = self.config.optim
        steps = self.num_train_images() // optim.batch_size
        if optim.steps_per_epoch:
            steps = min(steps, optim.steps_per_epoch)
        if steps < 1:
            raise ValueError(
                f"The fold's {self.num_train_images()} training images do not fill "
                f"one batch of {optim.batch_size}; lower --batch_size.")
        return steps

    @abc.abstractmethod
    def train_dataset(self, epoch):
        """The `tf.data.Dataset` of one epoch's batches, a function of (seed, epoch) only."""

    def worker_train_dataset(self, epoch, skip, input_context):
        """One worker's per-replica batches of epoch `epoch`, from global step `skip` on.

        For a job of several workers (`svf_tf.runs.cluster.distributed_batches`).
        Default: `train_dataset` sharded (`svf_tf.data.sharding`); a task whose
        elements are costly to make loads only its own share instead.
        """
        return shard_global_batches(self.train_dataset(epoch).skip(skip),
                                    self.config.optim.batch_size, input_context)

    # Model and optimisation.
    @abc.abstractmethod
    def build_model(self):
        """The Keras model (called inside the strategy's scope)."""

    @abc.abstractmethod
    def compute_losses(self, model, batch):
        """The loss dict ("loss" is the total) of one local training batch."""

    @abc.abstractmethod
    def make_predict_fn(self, model):
        """A function mapping the validation inputs to logits."""

    def backbone_variable_ids(self, model):
        """Ids of the trainable variables that belong to a backbone (lr ratio applies)."""
        ids = set()
        for layer in model.layers:
            if isinstance(layer, keras.Model) and "backbone" in layer.name:
                ids.update(id(v) for v in layer.trainable_variables)
        return ids

    def build_optimizer(self, model, total_steps):
        """`TorchSGD` on the configured schedule; backbone variables at the lr ratio."""
        config = self.config.optim
        kwargs = {"scale": config.poly_multiplier} if config.lr_schedule == "poly" else {}
        schedule = make_lr_schedule(config.lr_schedule, config.lr, total_steps=total_steps,
                                    **kwargs)
        backbone_ids = self.backbone_variable_ids(model)
        optimizer = TorchSGD(
            learning_rate=schedule, momentum=config.momentum, weight_decay=config.weight_decay,
            lr_multipliers=[(lambda v: id(v) in backbone_ids, config.backbone_lr_ratio)])
        optimizer.build(model.trainable_variables)
        return optimizer

    def compute_step(self, model, batch):
        """(losses, counts) of one local training batch.

        `losses` is `compute_losses`'s dict; `counts` holds additive tensors
        (e.g. intersection and union pixel counts) summed over the replicas
        and the epoch's steps and turned into the epoch's training metrics by
        `train_metrics`. Default: no counts.
        """
        return self.compute_losses(model, batch), {}

    def train_metrics(self, counts):
        """{name: value} of the epoch's training metrics from its summed `counts` (default {})."""
        return {}

    def make_train_step(self, model, optimizer, strategy):
        """A `tf.function` running one distributed training step.

        The loss is the mean over the valid pixels of the *global* batch: each
        replica weights its local mean by its share of the valid pixels
        (`batch[self.label_key] != 255`), so the summed gradients, and the
        result, do not depend on the replica count. The step returns the
        losses and, under `COUNT_PREFIX`, the counts of `compute_step`
        summed over the replicas.
        """
        variables = model.trainable_variables

        def local_gradients(batch):
            with tf.GradientTape() as tape:
                losses, counts = self.compute_step(model, batch)
            grads = tape.gradient(losses["loss"], variables)
            valid = tf.reduce_sum(tf.cast(batch[self.label_key] != IGNORE_LABEL, tf.float32))
            return losses, grads, valid, counts

        if self.config.run.jit_compile:
            local_gradients = tf.function(local_gradients, jit_compile=True)

        def replica_step(batch):
            losses, grads, valid, counts = local_gradients(batch)
            total = tf.distribute.get_replica_context().all_reduce("sum", valid)
            share = valid / tf.maximum(total, 1.0)
            grads = [None if g is None else g * share for g in grads]
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return ({name: value * share for name, value in losses.items()},
                    {COUNT_PREFIX + name: value for name, value in counts.items()})

        @tf.function
        def train_step(distributed_batch):
            losses, counts = strategy.run(replica_step, args=(distributed_batch,))
            return {name: strategy.reduce("sum", value, axis=None)
                    for name, value in {**losses, **counts}.items()}

        return train_step

    # Hooks of the shared loop.
    @abc.abstractmethod
    def describe(self, svf_trainable, other_trainable, steps_per_epoch, replicas):
        """One line saying what trains, on what, and how many steps an epoch has."""

    @abc.abstractmethod
    def make_validation(self, model):
        """`fn() -> report`: a dict holding at least the keys of `metric_names`."""

    def make_distributed_validation(self, model, strategy):
        """`make_validation` for a job of several workers (every worker calls the result).

        Default: every worker validates on all the data, which gives each the
        same report. A task overrides it to split the data over the
        strategy's replicas (`FewShotTask`).
        """
        return self.make_validation(model)

    def make_epoch_metrics(self, model):
        """`fn() -> dict` of extra per-epoch scalars: the drift of the singular values."""
        layers = svf_layers(model)
        initial = {id(layer): np.asarray(layer.singular_values) for layer in layers}
        return lambda: singular_value_drift(layers, initial)

    def on_new_best(self, model, run_dir):  # noqa: B027 (an optional hook)
        """Writes the task's own files for a new best model (default: nothing)."""

    def summary_fields(self):
        """Task-specific entries of `summary.json`."""
        return {}

    def data_fingerprint(self):
        """{"train_list": ..., "val_list": ...} fingerprints of the data (run.json); {}: none."""
        return {}


def svf_layers(model):
    """The SVF layers of `model`, nested models included."""
    return [layer for _, layer in iter_layers(model) if isinstance(layer, SVFFactorization)]


def singular_value_drift(layers, initial):
    """Mean and max relative change of the singular values since `initial`."""
    ratios = [np.asarray(layer.singular_values) / np.maximum(initial[id(layer)], 1e-12)
              for layer in layers]
    if not ratios:
        return {}
    ratios = np.concatenate(ratios)
    return {"svf/mean_ratio": float(ratios.mean()),
            "svf/max_abs_change": float(np.abs(ratios - 1.0).max())}


def trainable_counts(model):
    """(SVF factor values, all other values) that train in `model`."""
    svf = sum(math.prod(v.shape) for v in model.trainable_variables if "svf_" in v.path)
    return svf, sum(math.prod(v.shape) for v in model.trainable_variables) - svf
