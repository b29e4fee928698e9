"""`FewShotTask`: data, model, loss and validation of episodic meta-training (`--mode=train`).

The task owns what is specific to few-shot segmentation (Model Garden's
Task); `svf_tf.runs.trainer.run_training` owns the loop, checkpoints and
summaries. The hooks are declared by `svf_tf.tasks.task.Task`.
"""

import os

import tensorflow as tf

from svf_tf.data.cache import svf_tf_cache_dir
from svf_tf.data.episodes.episode_files import episode_file_name, load_or_create_test_episodes
from svf_tf.data.lists.class_splits import fold_classes
from svf_tf.data.lists.fold_lists import build_fold_lists
from svf_tf.data.pipeline import make_test_dataset, make_train_dataset
from svf_tf.data.synthetic.dataset import GENERATOR_VERSION as SYNTHETIC_GENERATOR_VERSION
from svf_tf.data.transforms.presets import augment_config
from svf_tf.metrics.distributed_evaluation import evaluate_episodes_distributed
from svf_tf.metrics.evaluation import evaluate_episodes
from svf_tf.metrics.iou_counts import (
    CLASS_EPISODES,
    CLASS_INTERSECTION,
    CLASS_UNION,
    EPSILON,
    FB_INTERSECTION,
    FB_UNION,
    few_shot_iou_counts,
)
from svf_tf.models.build_model import build_fsss_model
from svf_tf.models.losses import fsss_loss
from svf_tf.runs.cluster import worker_count
from svf_tf.runs.identity import list_fingerprint
from svf_tf.surgery.svf_weights import save_svf_weights
from svf_tf.tasks.task import Task, svf_layers
from svf_tf.weights.base_learner import load_base_learner

#: The epoch-record keys of the training episodes' scores (`FewShotTask.train_metrics`).
TRAIN_MIOU, TRAIN_FB_IOU = "train/miou", "train/fb_iou"


class FewShotTask(Task):
    """Builds and runs one experiment described by an `ExperimentConfig`.

    Args:
        config: the run's `ExperimentConfig`.
        log: callable taking one line of text.
    """

    mode = "train"
    metric_names = {"miou": "val mIoU", "fb_iou": "FB-IoU"}
    label_key = "query_mask"

    def __init__(self, config, log=print):
        super().__init__(config, log)
        data = config.data
        self.augment = augment_config(data.dataset, crop_size=data.train_size,
                                      test_size=data.test_size, scale_range=data.scale_range)
        classes = fold_classes(data.dataset, data.fold, coco_split=data.coco_split)
        self.num_novel, self.num_base = len(classes.novel), len(classes.base)
        self._lists = {}
        self.episode_file = None

    # Data.
    def fold_lists(self, split):
        if split not in self._lists:
            config = self.config.data
            self._lists[split] = build_fold_lists(
                config.dataset, self.data_root, config.fold, split,
                list_file=config.train_list if split == "train" else config.val_list,
                filter_novel=config.filter_novel if split == "train" else None,
                coco_split=config.coco_split, cache_dir=config.cache_dir)
        return self._lists[split]

    def num_train_images(self):
        """Training images per epoch (one episode each)."""
        return len(self.fold_lists("train").items)

    def train_dataset(self, epoch, **sharding):
        data, batch_size = self.config.data, self.config.optim.batch_size
        return make_train_dataset(
            self.fold_lists("train"), data.shot, self.augment, seed=self.config.run.seed,
            epoch=epoch, batch_size=batch_size,
            num_episodes=self.steps_per_epoch() * batch_size,
            with_base_mask=self.config.model.method == "bam",
            base_classes=fold_classes(data.dataset, data.fold, coco_split=data.coco_split),
            **sharding)

    def worker_train_dataset(self, epoch, skip, input_context):
        """Only this worker's episodes are loaded (`make_train_dataset`'s `input_context`)."""
        return self.train_dataset(epoch, input_context=input_context, skip_batches=skip)

    def test_dataset(self, seed, indices=None):
        """(dataset, episode file) of the saved test episodes of `seed` (those of `indices`)."""
        config = self.config.data
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
        if indices is not None:
            episodes = [episodes[index] for index in indices]
        return make_test_dataset(episodes, self.augment), path

    # Model and optimisation.
    def build_model(self):
        data, model = self.config.data, self.config.model
        head_options = model.head_options()
        if model.method == "bam":
            head_options["num_base_classes"] = len(fold_classes(
                data.dataset, data.fold, coco_split=data.coco_split).base)
            if model.base_learner:
                head_options["base_learner"] = load_base_learner(
                    model.base_learner, model.backbone, head_options["num_base_classes"],
                    backbone_options=model.backbone_options())
            else:
                self.log("BAM: no --base_learner given, so the base learner is randomly "
                         "initialised and stage-2 numbers are meaningless; train stage 1 "
                         "(--mode=train_base) or convert BAM's best.pth and pass "
                         "--base_learner=<file>.")
        return build_fsss_model(
            model.method, model.backbone, data.shot, weights=model.weights,
            partial_weights=model.partial_weights,
            finetune=self.config.finetune, backbone_options=model.backbone_options(),
            **head_options)

    def model_inputs(self, model, batch):
        return {t.name.split(":")[0]: batch[t.name.split(":")[0]] for t in model.inputs}

    def compute_losses(self, model, batch):
        """The loss dict ("loss" is the total) of one local training batch."""
        outputs = model(self.model_inputs(model, batch), training=True)
        return fsss_loss(self.config.model.method, outputs, batch)

    def compute_step(self, model, batch):
        """The losses, and the IoU counts of the training episodes' predictions (one forward pass).

        The counts are `few_shot_iou_counts` of the training logits (at the
        training crop, against its label) per base-class slot: an epoch's
        training mIoU costs no extra forward pass (`train_metrics`).
        """
        outputs = model(self.model_inputs(model, batch), training=True)
        losses = fsss_loss(self.config.model.method, outputs, batch)
        return losses, few_shot_iou_counts(batch["query_mask"], outputs["logits"],
                                           batch["class_slot"], self.num_base)

    def train_metrics(self, counts):
        """`train/miou` and `train/fb_iou` of the epoch's training episodes.

        mIoU: per base class, intersections and unions summed over the
        epoch's episodes, then the mean over the classes those episodes drew
        (an epoch may not draw every base class); FB-IoU: the mean of the
        pooled background and foreground IoU. Computed on the augmented
        training crops with the model in training mode, so it is the paper's
        training curve (Figs. 2, 3, 7), not a clean base-class test
        (`BaseClassTrackingTask` adds that).
        """
        if not counts:
            return {}
        drawn = counts[CLASS_EPISODES] > 0
        class_iou = counts[CLASS_INTERSECTION] / (counts[CLASS_UNION] + EPSILON)
        fb_iou = counts[FB_INTERSECTION] / (counts[FB_UNION] + EPSILON)
        return {TRAIN_MIOU: float(class_iou[drawn].mean()) if drawn.any() else 0.0,
                TRAIN_FB_IOU: float(fb_iou.mean())}

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

    # Hooks of the shared training loop (svf_tf/runs/trainer.py).
    def describe(self, svf_trainable, other_trainable, steps_per_epoch, replicas):
        data, model = self.config.data, self.config.model
        return (f"{model.method} on {model.backbone} ({self.config.finetune.mode}), "
                f"{data.dataset} fold {data.fold}, {data.shot}-shot: {svf_trainable:,} "
                f"singular values "
                f"and {other_trainable:,} other values train; {steps_per_epoch} steps/epoch, "
                f"{replicas} replica(s).")

    def make_validation(self, model):
        """`fn() -> report`: the saved test episodes of the first eval seed."""
        return self.seed_evaluation(self.make_predict_fn(model), self.config.data.eval_seeds[0])

    def make_distributed_validation(self, model, strategy):
        """`make_validation` with the test episodes split over all replicas of all workers."""
        return self.seed_evaluation(self.make_predict_fn(model), self.config.data.eval_seeds[0],
                                    strategy)

    def seed_evaluation(self, predict, seed, strategy=None, verbose=0):
        """`fn() -> report` of `predict` on the saved test episodes of `seed`.

        Validation, `--mode=eval` and `--mode=eval_prior` all score through
        here. A `strategy` of several workers splits the episodes over all its
        replicas and sums the counts (`evaluate_episodes_distributed`: the
        report of one process, exactly); otherwise `evaluate_episodes` runs
        them in this process (`verbose`: its progress bar).
        """
        dataset, self.episode_file = self.test_dataset(seed)
        if strategy is None or worker_count(strategy) == 1:
            return lambda: evaluate_episodes(predict, dataset, self.num_novel, verbose=verbose)
        return lambda: evaluate_episodes_distributed(
            predict, lambda indices: self.test_dataset(seed, indices)[0],
            self.config.data.test_episodes, self.num_novel, strategy)

    def on_new_best(self, model, run_dir):
        """Writes the best model's SVF adapter (SVF runs), its header naming the run."""
        if svf_layers(model):
            data, spec = self.config.data, self.config.model
            settings = {"run_dir": os.path.abspath(run_dir), "method": spec.method,
                        "backbone": spec.backbone, "dataset": data.dataset, "fold": data.fold,
                        "shot": data.shot}
            save_svf_weights(model, os.path.join(run_dir, "best", "adapter.svf.npz"),
                             settings=settings)

    def data_fingerprint(self):
        return {f"{split}_list": list_fingerprint(self.fold_lists(split).items, self.data_root)
                for split in ("train", "val")}

    def summary_fields(self):
        config = self.config.data
        return {
            "test_episodes_file": self.episode_file,
            "conventions": {
                "episodes": config.test_episodes, "seed": config.eval_seeds[0],
                "resolution": "original (logits resized with align_corners, 255 ignored)",
                "checkpoint_selection": "best validation mIoU on the test episodes",
                "dagger_filter": config.filter_novel,
            },
        }

