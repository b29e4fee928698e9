"""`FewShotTask`: data, model, optimizer and steps of one few-shot experiment.

The task owns what is specific to few-shot segmentation (Model Garden's
Task); `trainer.py` owns the loop, checkpoints and summaries.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from svf_tf.constants import IGNORE_LABEL
from svf_tf.data import build_fold_lists, ensure_synthetic_dataset
from svf_tf.data.cache import svf_tf_cache_dir
from svf_tf.data.episodes.episode_files import episode_file_name, load_or_create_test_episodes
from svf_tf.data.lists.class_splits import fold_classes
from svf_tf.data.pipeline import make_test_dataset, make_train_dataset
from svf_tf.data.synthetic.dataset import GENERATOR_VERSION as SYNTHETIC_GENERATOR_VERSION
from svf_tf.data.transforms.presets import augment_config
from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.metrics.evaluation import evaluate_episodes
from svf_tf.models.build_model import build_fsss_model
from svf_tf.models.losses import fsss_loss
from svf_tf.optim.lr_schedules import make_lr_schedule
from svf_tf.optim.sgd import TorchSGD
from svf_tf.surgery import save_svf_weights
from svf_tf.surgery.layer_paths import iter_layers
from svf_tf.weights.base_learner import load_base_learner


class FewShotTask:
    """Builds and runs one experiment described by an `ExperimentConfig`.

    Args:
        config: the run's `ExperimentConfig`.
        log: callable taking one line of text.
    """

    #: The `--mode` this task trains for (the run summary's "mode").
    mode = "train"
    #: Validation report keys recorded per epoch, with their log labels;
    #: "miou" selects the best checkpoint.
    metric_names = {"miou": "val mIoU", "fb_iou": "FB-IoU"}
    #: The batch key of the training labels (the loss averages over its valid pixels).
    label_key = "query_mask"

    def __init__(self, config, log=print):
        self.config = config
        self.log = log
        self._data_root = None
        self.augment = augment_config(config.dataset, crop_size=config.train_size,
                                      test_size=config.test_size,
                                      scale_range=config.scale_range)
        self.num_novel = len(fold_classes(config.dataset, config.fold,
                                          coco_split=config.coco_split).novel)
        self._lists = {}
        self._episode_file = None

    # Data.
    @property
    def data_root(self):
        """The dataset directory, resolved (and the synthetic one generated) on first use."""
        if self._data_root is None:
            self._data_root = self._resolve_data_root()
        return self._data_root

    def _resolve_data_root(self):
        config = self.config
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

    def fold_lists(self, split):
        if split not in self._lists:
            config = self.config
            self._lists[split] = build_fold_lists(
                config.dataset, self.data_root, config.fold, split,
                list_file=config.train_list if split == "train" else config.val_list,
                filter_novel=config.filter_novel if split == "train" else None,
                coco_split=config.coco_split, cache_dir=config.cache_dir)
        return self._lists[split]

    def num_train_images(self):
        """Training images per epoch (one episode each)."""
        return len(self.fold_lists("train").items)

    def steps_per_epoch(self):
        steps = self.num_train_images() // self.config.batch_size
        if self.config.steps_per_epoch:
            steps = min(steps, self.config.steps_per_epoch)
        if steps < 1:
            raise ValueError(
                f"The fold's {self.num_train_images()} training images do not fill "
                f"one batch of {self.config.batch_size}; lower --batch_size.")
        return steps

    def train_dataset(self, epoch):
        config = self.config
        return make_train_dataset(
            self.fold_lists("train"), config.shot, self.augment, seed=config.seed, epoch=epoch,
            batch_size=config.batch_size,
            num_episodes=self.steps_per_epoch() * config.batch_size,
            with_base_mask=config.method == "bam",
            base_classes=fold_classes(config.dataset, config.fold, coco_split=config.coco_split))

    def test_dataset(self, seed):
        config = self.config
        directory = config.episodes_dir or os.path.join(config.cache_dir or svf_tf_cache_dir(),
                                                        "episodes")
        # The synthetic dataset's generator version is in the name: a new
        # version changes the val list, and old episode files must not clash.
        prefix = f"synthetic_v{SYNTHETIC_GENERATOR_VERSION}_" if config.synthetic else ""
        name = episode_file_name(config.dataset, config.fold, config.shot, seed,
                                 num_episodes=config.test_episodes)
        path = os.path.join(directory, prefix + name)
        episodes = load_or_create_test_episodes(path, self.fold_lists("val"), shot=config.shot,
                                                seed=seed, num_episodes=config.test_episodes)
        return make_test_dataset(episodes, self.augment), path

    # Model and optimisation.
    def build_model(self):
        config = self.config
        head_options = config.head_options()
        if config.method == "bam":
            head_options["num_base_classes"] = len(fold_classes(
                config.dataset, config.fold, coco_split=config.coco_split).base)
            if config.base_learner:
                head_options["base_learner"] = load_base_learner(
                    config.base_learner, config.backbone, head_options["num_base_classes"],
                    backbone_options=config.backbone_options())
            else:
                self.log("BAM: no --base_learner given, so the base learner is randomly "
                         "initialised and stage-2 numbers are meaningless; train stage 1 "
                         "(--mode=train_base) or convert BAM's best.pth and pass "
                         "--base_learner=<file>.")
        model = build_fsss_model(
            config.method, config.backbone, config.shot, weights=config.weights,
            finetune=config.finetune_spec(), backbone_options=config.backbone_options(),
            **head_options)
        return model

    def backbone_variable_ids(self, model):
        """Ids of the trainable variables that belong to a backbone (lr ratio applies)."""
        ids = set()
        for layer in model.layers:
            if isinstance(layer, keras.Model) and "backbone" in layer.name:
                ids.update(id(v) for v in layer.trainable_variables)
        return ids

    def build_optimizer(self, model, total_steps):
        config = self.config
        kwargs = {"scale": config.poly_multiplier} if config.lr_schedule == "poly" else {}
        schedule = make_lr_schedule(config.lr_schedule, config.lr, total_steps=total_steps,
                                    **kwargs)
        backbone_ids = self.backbone_variable_ids(model)
        optimizer = TorchSGD(
            learning_rate=schedule, momentum=config.momentum, weight_decay=config.weight_decay,
            lr_multipliers=[(lambda v: id(v) in backbone_ids, config.backbone_lr_ratio)])
        optimizer.build(model.trainable_variables)
        return optimizer

    def model_inputs(self, model, batch):
        return {t.name.split(":")[0]: batch[t.name.split(":")[0]] for t in model.inputs}

    def compute_losses(self, model, batch):
        """The loss dict ("loss" is the total) of one local training batch."""
        outputs = model(self.model_inputs(model, batch), training=True)
        return fsss_loss(self.config.method, outputs, batch)

    def make_train_step(self, model, optimizer, strategy):
        """A `tf.function` running one distributed training step.

        The loss is the mean over the valid pixels of the *global* batch: each
        replica weights its local mean by its share of the valid pixels
        (`batch[self.label_key] != 255`), so the summed gradients, and the
        result, do not depend on the replica count.
        """
        variables = model.trainable_variables

        def local_gradients(batch):
            with tf.GradientTape() as tape:
                losses = self.compute_losses(model, batch)
            grads = tape.gradient(losses["loss"], variables)
            valid = tf.reduce_sum(tf.cast(batch[self.label_key] != IGNORE_LABEL, tf.float32))
            return losses, grads, valid

        if self.config.jit_compile:
            local_gradients = tf.function(local_gradients, jit_compile=True)

        def replica_step(batch):
            losses, grads, valid = local_gradients(batch)
            total = tf.distribute.get_replica_context().all_reduce("sum", valid)
            share = valid / tf.maximum(total, 1.0)
            grads = [None if g is None else g * share for g in grads]
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return {name: value * share for name, value in losses.items()}

        @tf.function
        def train_step(distributed_batch):
            per_replica = strategy.run(replica_step, args=(distributed_batch,))
            return {name: strategy.reduce("sum", value, axis=None)
                    for name, value in per_replica.items()}

        return train_step

    def make_predict_fn(self, model):
        inputs = [t.name.split(":")[0] for t in model.inputs]

        @tf.function(reduce_retracing=True)
        def predict(query_image, support_images, support_masks):
            feed = {"query_image": query_image, "support_images": support_images,
                    "support_masks": support_masks}
            if "class_slot" in inputs:
                feed["class_slot"] = tf.zeros(tf.shape(query_image)[:1], tf.int32)
            return model(feed, training=False)["logits"]

        return predict

    def total_steps(self):
        return self.config.epochs * self.steps_per_epoch()

    # Hooks of the shared training loop (svf_tf/runs/trainer.py).
    def describe(self, svf_trainable, other_trainable, steps_per_epoch, replicas):
        config = self.config
        return (f"{config.method} on {config.backbone} ({config.finetune}), {config.dataset} "
                f"fold {config.fold}, {config.shot}-shot: {svf_trainable:,} singular values "
                f"and {other_trainable:,} other values train; {steps_per_epoch} steps/epoch, "
                f"{replicas} replica(s).")

    def make_validation(self, model):
        """`fn() -> report`: the saved test episodes of the first eval seed."""
        predict = self.make_predict_fn(model)
        test_data, self._episode_file = self.test_dataset(self.config.eval_seeds[0])
        return lambda: evaluate_episodes(predict, test_data, self.num_novel, verbose=0)

    def make_epoch_metrics(self, model):
        """`fn() -> dict`: drift of the singular values since this call."""
        layers = _svf_layers(model)
        initial = {id(layer): np.asarray(layer.singular_values) for layer in layers}
        return lambda: _singular_value_drift(layers, initial)

    def on_new_best(self, model, run_dir):
        """Writes the best model's SVF adapter (SVF runs)."""
        if _svf_layers(model):
            save_svf_weights(model, os.path.join(run_dir, "best", "adapter.svf.npz"))

    def summary_fields(self):
        config = self.config
        return {
            "test_episodes_file": self._episode_file,
            "conventions": {
                "episodes": config.test_episodes, "seed": config.eval_seeds[0],
                "resolution": "original (logits resized with align_corners, 255 ignored)",
                "checkpoint_selection": "best validation mIoU on the test episodes",
                "dagger_filter": config.filter_novel,
            },
        }


def _svf_layers(model):
    return [layer for _, layer in iter_layers(model) if isinstance(layer, SVFFactorization)]


def _singular_value_drift(layers, initial):
    """Mean and max relative change of the singular values since the start."""
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
