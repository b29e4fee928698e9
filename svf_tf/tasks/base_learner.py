"""`--mode=train_base`: BAM's stage 1, a PSPNet on the fold's base classes.

BAM `train_base.py` with `model/PSPNet.py` (`OneModel`) and `config/*_base.yaml`.

`BaseLearnerTask` is the stage-1 sibling of `FewShotTask` (both implement
`svf_tf.tasks.task.Task`); the loop,
checkpoints, resume, progress bar, per-epoch log line, TensorBoard and
summary.json are the shared `svf_tf.runs.trainer.run_training`. Besides the usual
`latest/` and `best/` checkpoints, every new best writes the two files
stage 2 takes (`base_learner_weights`):

    <work_dir>/best/backbone.weights.h5      -> --weights= of the BAM run
    <work_dir>/best/base_learner.weights.h5  -> --base_learner= of the BAM run
"""

import os

import tensorflow as tf

from svf_tf.backbones import FinetuneSpec
from svf_tf.data.lists.class_splits import fold_classes
from svf_tf.data.lists.list_files import derived_pairs, read_list_file, resolve
from svf_tf.data.transforms.presets import augment_config
from svf_tf.metrics.base_class_iou import (
    base_class_report,
    class_iou_counts,
    evaluate_base_classes,
)
from svf_tf.metrics.distributed_evaluation import sum_counts_distributed
from svf_tf.models.losses import masked_cross_entropy
from svf_tf.runs.identity import list_fingerprint
from svf_tf.tasks.base_learner_data import make_base_train_dataset, make_base_val_dataset
from svf_tf.tasks.task import Task
from svf_tf.weights.base_learner import build_stage1_model, save_stage1_weights


class BaseLearnerTask(Task):
    """BAM's stage-1 PSPNet on the base classes of a fold.

    - Data: the whole train list, without the dagger filter or the
      2048-pixel rule (BAM's `BaseData`), labels remapped to base indices (BAM
      `util/get_mulway_base_data.py`; `svf_tf.data.lists.base_annotation`),
      the stage-1 augmentation preset at `--train_size` (417 in the
      reference); see `base_data`.
    - Model: `build_pspnet_model` on `build_backbone(..., finetune="full")`
      with BAM's backbone variant (the config's model group, which must be
      `method="bam"`: deep-stem ResNet-50 with every block dilated, or
      VGG16-BN), 1 + 15 (Pascal) / 1 + 60 (COCO) outputs; `--weights`
      initialises the backbone (ImageNet, converted `resnet50_v2` /
      `vgg16_bn`). `--finetune` and friends do not apply.
    - BatchNorm: by default (`--backbone_bn=frozen`) the backbone's BN
      statistics stay frozen (ImageNet running statistics,
      `FrozenBatchNormalization`, as the references' `fix_bn` does in stage
      2); only its gamma/beta train. The reference trains them in train mode
      with SyncBN over 4 GPUs x 3 images; we keep them frozen by default
      because batches of a few crops per replica (CPU, small GPUs) give poor
      statistics; `--backbone_bn=batch_stats` trains them as the reference
      does (statistics per replica, not synchronised). The new PPM /
      classifier BNs have no pretrained statistics, so they train as
      ordinary BNs (batch statistics in training, running ones at validation
      and in stage 2), as in the reference.
    - Loss: cross entropy over the 16 / 61 classes, 255 ignored.
    - Optimizer: `TorchSGD`, poly schedule. Groups are set by the flags,
      as for meta-training: the PPM and classifier run at `--lr` x
      `--poly_multiplier`, the backbone at `--backbone_lr_ratio` of that.
      The reference's rule (BAM train_base.py, config/*_base.yaml) is
      Pascal `index_split: 0`: backbone at base_lr, PPM/cls at 10 x base_lr
      (`--poly_multiplier=10 --backbone_lr_ratio=0.1`); COCO
      `index_split: -1`: every group at 10 x base_lr
      (`--poly_multiplier=10 --backbone_lr_ratio=1`). The stage-1 configs
      (configs/*_base.cfg) set exactly these.
    - Validation: base-class mIoU (`base_class_iou`) on the val split's whole
      list (`--val_list`, or the dataset's val list; `--val_images` keeps the
      first N) with remapped labels, on the test canvas (`--test_size`,
      255 padding ignored). The best one is kept. The workers of a
      multi-worker job split the images and sum the counts.

    Args:
        config: the run's `ExperimentConfig` (`config.model.method` must be
            "bam": the stage-1 backbone variant is BAM's).
        log: callable taking one line of text.
    """

    mode = "train_base"
    metric_names = {"miou": "val base-class mIoU", "background_iou": "background IoU"}
    label_key = "label"

    def __init__(self, config, log=print):
        super().__init__(config, log)
        if config.model.method != "bam":
            raise ValueError(
                f"--mode={self.mode} trains BAM's stage-1 network (a PSPNet on the fold's base "
                f"classes), whose backbone is BAM's variant: --method must be bam, not "
                f"{config.model.method!r}.")
        data = config.data
        self._lists = {}
        self.classes = fold_classes(data.dataset, data.fold, coco_split=data.coco_split)
        self.num_classes = len(self.classes.base) + 1
        self.augment = augment_config(f"bam_base_{data.dataset}",
                                      crop_size=data.train_size, test_size=data.test_size,
                                      scale_range=data.scale_range)

    # Data.
    def split_items(self, split):
        """(image, label) paths, absolute, of every image of a split's list.

        The whole list, as BAM's `BaseData`: no dagger filter and no
        2048-pixel rule (an image holding only novel classes trains as all
        background). `--val_images` keeps the first N validation images.
        """
        if split not in self._lists:
            config = self.config.data
            list_file = config.train_list if split == "train" else config.val_list
            pairs = (read_list_file(list_file) if list_file
                     else derived_pairs(config.dataset, self.data_root, split))
            self._lists[split] = [(resolve(self.data_root, image), resolve(self.data_root, label))
                                  for image, label in pairs]
        items = self._lists[split]
        if split == "val" and self.config.data.val_images:
            items = items[:self.config.data.val_images]
        return items

    def num_train_images(self):
        return len(self.split_items("train"))

    def train_dataset(self, epoch):
        batch_size = self.config.optim.batch_size
        return make_base_train_dataset(
            self.split_items("train"), self.classes, self.augment, seed=self.config.run.seed,
            epoch=epoch, batch_size=batch_size,
            num_samples=self.steps_per_epoch() * batch_size)

    def val_dataset(self):
        return make_base_val_dataset(self.split_items("val"), self.classes, self.augment.test_size,
                                     batch_size=self.config.optim.batch_size)

    # Model and optimisation.
    def build_model(self):
        model = self.config.model
        return build_stage1_model(model.backbone, self.num_classes, weights=model.weights,
                                  partial_weights=model.partial_weights,
                                  finetune=FinetuneSpec("full"),
                                  backbone_options=model.backbone_options())

    def compute_losses(self, model, batch):
        logits = model(batch["image"], training=True)["logits"]
        return {"loss": masked_cross_entropy(logits, batch["label"])}

    def make_predict_fn(self, model):
        @tf.function(reduce_retracing=True)
        def predict(images):
            return model(images, training=False)["logits"]

        return predict

    # Hooks of the shared training loop.
    def describe(self, svf_trainable, other_trainable, steps_per_epoch, replicas):
        data = self.config.data
        del svf_trainable
        return (f"BAM stage 1: PSPNet on {self.config.model.backbone}, {data.dataset} fold "
                f"{data.fold}, {self.num_classes} classes ({self.num_train_images()}"
                f" training images, no dagger filter): {other_trainable:,} values train; "
                f"{steps_per_epoch} steps/epoch, {replicas} replica(s).")

    def make_validation(self, model):
        predict, dataset = self.make_predict_fn(model), self.val_dataset()
        return lambda: evaluate_base_classes(predict, dataset)

    def make_distributed_validation(self, model, strategy):
        """`make_validation` with the val images split over all replicas of all workers.

        One image per replica step (`sum_counts_distributed`); the summed
        integer counts give one process's report exactly, the network's
        output per image not depending on the batch at inference.
        """
        predict, items = self.make_predict_fn(model), self.split_items("val")
        if not items:
            raise ValueError("The validation list yielded no image; nothing to evaluate.")

        def counts(batch):
            intersection, union = class_iou_counts(batch["label"], predict(batch["image"]))
            return {"intersection": intersection, "union": union}

        def images(indices):
            return make_base_val_dataset([items[i] for i in indices], self.classes,
                                         self.augment.test_size, batch_size=1)

        return lambda: base_class_report(
            **sum_counts_distributed(counts, images, len(items), strategy), images=len(items))

    def on_new_best(self, model, run_dir):
        paths = save_stage1_weights(model, os.path.join(run_dir, "best"))
        self.log(f"stage-2 files: --base_learner={paths[0]} --weights={paths[1]}")

    def data_fingerprint(self):
        return {f"{split}_list": list_fingerprint(self.split_items(split), self.data_root)
                for split in ("train", "val")}

    def summary_fields(self):
        best = os.path.join(self.config.run_dir, "best")
        return {
            "base_learner_weights": os.path.join(best, "base_learner.weights.h5"),
            "backbone_weights": os.path.join(best, "backbone.weights.h5"),
            "conventions": {
                "train_list": "the whole train list: no dagger filter, no 2048-pixel rule "
                              "(BAM BaseData)",
                "classes": f"background + {self.num_classes - 1} base classes",
                "metric": "mean IoU over the base classes, pooled over the val images, "
                          "255 ignored, on the test canvas",
                "backbone_bn": ("running statistics frozen; gamma/beta train"
                                if self.config.model.backbone_bn == "frozen" else
                                "batch statistics in training, running ones updated; "
                                "gamma/beta train"),
            },
        }

