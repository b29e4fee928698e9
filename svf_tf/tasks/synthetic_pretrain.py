"""`--mode=pretrain_synthetic`: a backbone pre-trained on the synthetic corpus.

`SyntheticPretrainTask` is the offline sibling of ImageNet pre-training and
of `BaseLearnerTask` (both implement `svf_tf.tasks.task.Task`); the loop,
checkpoints, resume, progress bar, per-epoch log line, TensorBoard and
summary.json are the shared `svf_tf.runs.trainer.run_training`. Every new
best writes the backbone alone, the file the few-shot models take:

    <work_dir>/best/backbone.weights.h5  -> --weights= (same --backbone and --stem)

`svf_tf.weights.synthetic_backbone.ensure_synthetic_backbone` runs this task
into the cache and reuses its result.
"""

import os

import numpy as np
import tensorflow as tf

from svf_tf.constants import IGNORE_LABEL
from svf_tf.data.synthetic.dataset import GENERATOR_VERSION
from svf_tf.data.synthetic.pretraining import (
    CORPUS_VERSION,
    NUM_PRETRAIN_CLASSES,
    TRAIN_STREAM,
    VAL_STREAM,
    CorpusOptions,
    corpus_dataset,
)
from svf_tf.metrics.distributed_evaluation import sum_counts_distributed
from svf_tf.runs.trainer import run_training
from svf_tf.tasks.synthetic_pretrain_model import (
    build_pretrain_model,
    predict_classes,
    pretrain_losses,
)
from svf_tf.tasks.task import Task
from svf_tf.weights.saving import save_weights_files

BACKBONE_FILE = "backbone.weights.h5"


def pretrain_backbone_options(model):
    """`build_backbone` keywords of the pre-trained variant of a `ModelConfig`.

    The configured stem and dilation (ResNet-50) or VGG16-BN, with the
    BatchNorm statistics trained (`backbone_bn="batch_stats"`). The dilation
    is the few-shot models' (output stride 8), although a step takes about 3
    times as long as with the undilated ResNet-50: at 65 px an undilated layer4
    is 3 x 3, mostly background under a per-pixel target, and in the first
    trials (undilated; dense or classification; 300-500 steps) the prior
    mask's mIoU stayed at 11-12, below the random backbone's 15.1, where the
    dilated one reached 24.3 after 250 steps (setup of
    `svf_tf.data.synthetic.pretraining`).
    """
    return {**model.backbone_options(), "backbone_bn": "batch_stats"}


def confusion_scores(confusion):
    """{"miou", "accuracy"} of a confusion matrix (rows: label, columns: prediction).

    mIoU is the mean over the classes that occur (in labels or predictions)
    of TP / (TP + FP + FN); for the classification target that is the
    per-class Jaccard index of the image decisions.
    """
    confusion = np.asarray(confusion, np.float64)
    true_positive = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    present = union > 0
    return {"miou": float(np.mean(true_positive[present] / union[present])),
            "accuracy": float(true_positive.sum() / max(confusion.sum(), 1.0))}


class SyntheticPretrainTask(Task):
    """Pre-training of a backbone on the synthetic corpus (`svf_tf.data.synthetic.pretraining`).

    - Data: an endless corpus, so an epoch is `--steps_per_epoch` batches
      (required); batch b of epoch e holds images (e x steps + b) x batch
      onwards of the training stream, a function of `--seed` only.
    - Model: `build_backbone(--backbone, weights=None, finetune="full")`
      in the variant of `pretrain_backbone_options` (ResNet-50 with the
      configured stem and dilation, or VGG16-BN; `backbone_bn="batch_stats"`:
      batch statistics in training, running ones updated, as ImageNet
      training), under the target's shape and texture heads
      (`svf_tf.tasks.synthetic_pretrain_model`); loss: the sum of their
      cross entropies.
    - Optimizer: `TorchSGD` on `--lr_schedule` from `--lr`, with
      `--momentum` and `--weight_decay`; every variable at `--lr`.
    - Validation: `--pretrain_val_images` held-out corpus images (their own
      stream): mIoU of the (shape, texture) classes the two heads predict
      together (dense: over background and the 100 classes, 255 ignored;
      classification: per-class Jaccard of the image decisions) and accuracy.
      The best mIoU's backbone is kept. The workers of a multi-worker job
      split the images and sum the confusion matrices.

    Args:
        config: the run's `ExperimentConfig`.
        log: callable taking one line of text.
    """

    mode = "pretrain_synthetic"
    metric_names = {"miou": "val mIoU", "accuracy": "val accuracy"}
    label_key = "label"

    def __init__(self, config, log=print):
        super().__init__(config, log)
        pretrain = config.pretrain
        self.corpus = CorpusOptions(size=config.data.train_size,
                                    max_objects=pretrain.max_objects, target=pretrain.target,
                                    seed=config.run.seed)
        self._val_dataset = None

    # Data.
    def steps_per_epoch(self):
        steps = self.config.optim.steps_per_epoch
        if not steps:
            raise ValueError("--mode=pretrain_synthetic draws from an endless corpus: give "
                             "--steps_per_epoch > 0 (steps = --epochs x --steps_per_epoch).")
        return steps

    def num_train_images(self):
        return self.steps_per_epoch() * self.config.optim.batch_size

    def train_dataset(self, epoch):
        count = self.num_train_images()
        return corpus_dataset(self.corpus, TRAIN_STREAM, epoch * count, count,
                              self.config.optim.batch_size)

    def val_dataset(self):
        if self._val_dataset is None:
            self._val_dataset = corpus_dataset(
                self.corpus, VAL_STREAM, 0, self.config.pretrain.val_images,
                self.config.optim.batch_size, prefetch=0).cache()
        return self._val_dataset

    # Model and optimisation.
    def build_model(self):
        model = self.config.model
        return build_pretrain_model(model.backbone, self.corpus.target, self.corpus.size,
                                    pretrain_backbone_options(model))

    def backbone_variable_ids(self, model):
        """None: the whole network trains at --lr (there is no head to favour)."""
        return set()

    def compute_losses(self, model, batch):
        outputs = model(batch["image"], training=True)
        return pretrain_losses(outputs, batch["label"], self.corpus.target)

    def make_predict_fn(self, model):
        """images -> predicted corpus classes (the labels' coding, `predict_classes`)."""
        target = self.corpus.target

        @tf.function(reduce_retracing=True)
        def predict(images):
            return predict_classes(model(images, training=False), target)

        return predict

    # Hooks of the shared training loop.
    def describe(self, svf_trainable, other_trainable, steps_per_epoch, replicas):
        del svf_trainable
        model = self.config.model
        variant = ", ".join(f"{k}={v}" for k, v in pretrain_backbone_options(model).items())
        return (f"synthetic pre-training of {model.backbone} ({variant}), {self.corpus.target} "
                f"target over {NUM_PRETRAIN_CLASSES} shape x texture classes at "
                f"{self.corpus.size} px: {other_trainable:,} values train; {steps_per_epoch} "
                f"steps/epoch, {replicas} replica(s).")

    def _confusion_counts(self, predict):
        """`fn(batch) -> {"confusion": [C*C] float64}` of one batch (255 ignored), flattened."""
        classes = NUM_PRETRAIN_CLASSES + (self.corpus.target == "dense")

        def counts(batch):
            labels = tf.reshape(tf.cast(batch["label"], tf.int32), [-1])
            predictions = tf.reshape(tf.cast(predict(batch["image"]), tf.int32), [-1])
            valid = labels != IGNORE_LABEL
            codes = labels[valid] * classes + predictions[valid]
            return {"confusion": tf.math.bincount(codes, minlength=classes * classes,
                                                  maxlength=classes * classes,
                                                  dtype=tf.float64)}

        return counts, classes

    def make_validation(self, model):
        dataset = self.val_dataset()
        counts, classes = self._confusion_counts(self.make_predict_fn(model))

        def validate():
            confusion = sum((counts(batch)["confusion"].numpy() for batch in dataset),
                            np.zeros(classes * classes))
            return confusion_scores(confusion.reshape(classes, classes))

        return validate

    def make_distributed_validation(self, model, strategy):
        """`make_validation` with its images split over all replicas of all workers.

        The images one process validates (whole batches), one per replica
        step (`sum_counts_distributed`); their confusion matrices are summed.
        """
        counts, classes = self._confusion_counts(self.make_predict_fn(model))
        batch_size = self.config.optim.batch_size
        count = self.config.pretrain.val_images // batch_size * batch_size

        def images(indices):
            return corpus_dataset(self.corpus, VAL_STREAM, 0, 0, 1, prefetch=0, indices=indices)

        return lambda: confusion_scores(sum_counts_distributed(
            counts, images, count, strategy)["confusion"].reshape(classes, classes))

    def on_new_best(self, model, run_dir):
        directory = os.path.join(run_dir, "best")
        os.makedirs(directory, exist_ok=True)
        backbone = model.get_layer(f"{self.config.model.backbone}_backbone")
        save_weights_files((backbone, os.path.join(directory, BACKBONE_FILE)))

    def data_fingerprint(self):
        # The corpus is code, not a list: its versions pin what a resumed run trains on.
        return {"train_list": f"synthetic corpus v{CORPUS_VERSION} (scene generator "
                              f"v{GENERATOR_VERSION})"}

    def summary_fields(self):
        model = self.config.model
        return {
            "backbone_weights": os.path.join(self.config.run_dir, "best", BACKBONE_FILE),
            "backbone_options": pretrain_backbone_options(model),
            "conventions": {
                "corpus": f"synthetic corpus v{CORPUS_VERSION}: {NUM_PRETRAIN_CLASSES} shape x "
                          f"texture classes, 1 to {self.corpus.max_objects} objects per image, "
                          f"{self.corpus.size} px",
                "target": self.corpus.target,
                "metric": "mean IoU over the classes present (dense: background + 100, 255 "
                          "ignored; classification: per-class Jaccard of image decisions) on "
                          f"{self.config.pretrain.val_images} held-out corpus images",
                "backbone_bn": "batch statistics in training, running ones updated",
            },
        }


def pretrain(config, strategy, log=print, checkpoint_every=500):
    """Runs `SyntheticPretrainTask(config)` through the shared loop; returns the run summary.

    The summary's "backbone_weights" is the best backbone's file.
    """
    return run_training(SyntheticPretrainTask(config, log), strategy, log=log,
                        checkpoint_every=checkpoint_every)
