"""`--mode=pretrain`: Standard or BCPT pre-training on a fold's base classes, as Tasks.

Both reuse BAM's stage 1 (`BaseLearnerTask`): the fold's whole train list,
labels remapped so only base classes are foreground, the stage-1
augmentation, base-class mIoU validation, the SGD recipe of the flags.

- `StandardPretrainTask` is that task unchanged (the paper's "Standard",
  which follows BAM), recorded as --mode=pretrain.
- `BCPTTask` (BCPT paper Sec. 2) trains `BCPTModel` (layer4 embeddings and
  the linear W) with the objective of `svf_tf.bcpt.losses`, and runs the
  clustering of `svf_tf.bcpt.clustering` and `svf_tf.bcpt.guidance` inside
  the training step. Labels are taken at the layer4 grid (every 8th pixel,
  the positions the align-corners features sit on), so each embedding has
  its own label.

One BCPT step (`make_train_step`), in the paper's order:
1. guidance (Sec. 2.3): k-means of W's columns, mapping to the centres,
   Eq. 7; once, in cross-replica context (W and P are the same on every
   replica, so is the result);
2. on each replica: forward, assignment of the background embeddings to
   the guided centres, loss (Eq. 4 normalised by the global pixel counts),
   gradient step of the backbone and W;
3. the replicas' P_hat and counts are summed, then Eq. 1 updates the
   centres once, identically for any replica count.

Every new best writes `<work_dir>/best/backbone.weights.h5`, for
`--weights=` of meta-training or `--mode=eval_prior`.
"""

import os

import tensorflow as tf

from svf_tf.backbones import FinetuneSpec, build_backbone
from svf_tf.bcpt import clustering, guidance, losses
from svf_tf.bcpt.model import BCPTModel
from svf_tf.constants import INPUT_SIZE_STRIDE
from svf_tf.tasks.base_learner import BaseLearnerTask
from svf_tf.weights.base_learner import BACKBONE_FILE, stage1_backbone_options
from svf_tf.weights.saving import save_weights_files


class StandardPretrainTask(BaseLearnerTask):
    """The paper's "Standard" pre-training: BAM's stage 1 (`BaseLearnerTask`), --mode=pretrain."""

    mode = "pretrain"


def labels_at_features(labels, feature_size):
    """The labels [B, S, S] at the layer4 grid [B, h, w]: every 8th pixel from the corner.

    With (S - 1) % 8 == 0 the align-corners features of size (S - 1) / 8 + 1
    sit exactly on pixels 0, 8, 16, ...
    """
    stride = INPUT_SIZE_STRIDE
    return labels[:, ::stride, ::stride][:, :feature_size[0], :feature_size[1]]


class BCPTTask(BaseLearnerTask):
    """Background Clustering Pre-Training of a fold's backbone (see the module docstring).

    Args:
        config: the run's `ExperimentConfig` (its `pretraining` group holds
            K, mu, alpha and the options of docs/bcpt.md).
        log: callable taking one line of text.
    """

    mode = "pretrain"

    def __init__(self, config, log=print):
        super().__init__(config, log)
        settings = config.pretraining
        base = len(self.classes.base)
        if settings.guidance != "none" and settings.clusters - 1 > base:
            raise ValueError(
                f"--bcpt_clusters={settings.clusters} needs {settings.clusters - 1} guidance "
                f"vectors from k-means of the {base} base classes; give --bcpt_clusters <= "
                f"{base + 1} or --bcpt_guidance=none.")
        if config.run.jit_compile:
            log("note: --jit_compile does not apply to the BCPT step (its loss needs the "
                "replicas' pixel counts inside the gradient tape); it runs as a tf.function.")

    def build_backbone(self):
        """The backbone (BAM's stage-1 variant, the model group's overrides), fully trainable."""
        model = self.config.model
        return build_backbone(model.backbone, model.weights, finetune=FinetuneSpec("full"),
                              partial_weights=model.partial_weights,
                              **stage1_backbone_options(model.backbone,
                                                        model.backbone_options()))

    def build_model(self):
        settings = self.config.pretraining
        model = BCPTModel(self.build_backbone(), len(self.classes.base), settings.clusters,
                          self.config.run.seed, normalize=settings.embedding == "l2",
                          name="bcpt")
        size = self.config.data.train_size
        model(tf.zeros([1, size, size, 3]))
        return model

    def compute_losses(self, model, batch):
        """Eq. 4 of one batch, normalised by its own pixel counts (single replica)."""
        terms = self.loss_terms(model, batch)
        return {"loss": self.total(terms, terms["base_count"], terms["background_count"])}

    def loss_terms(self, model, batch):
        """Sums and counts of one local batch, and its background statistics for Eq. 1."""
        settings = self.config.pretraining
        outputs = model(batch["image"], training=True)
        embeddings = outputs["embeddings"]
        dim = embeddings.shape[-1]
        labels = labels_at_features(batch["label"], tf.shape(embeddings)[1:3])
        # The clustering and the loss run in float32 under a mixed-precision policy too.
        flat = tf.cast(tf.reshape(embeddings, [-1, dim]), tf.float32)
        labels = tf.reshape(labels, [-1])
        centres = tf.convert_to_tensor(model.state.centres)
        assignment = clustering.assign(tf.stop_gradient(flat), centres)
        base, background = losses.pixel_losses(flat, labels,
                                               tf.cast(model.class_vectors, tf.float32), centres,
                                               assignment, settings.softmax)
        is_background = tf.cast(tf.equal(labels, 0), flat.dtype)
        is_base = tf.cast(tf.logical_and(labels > 0, labels != 255), flat.dtype)
        p_hat, counts = clustering.aggregate(tf.stop_gradient(flat), assignment,
                                             settings.clusters, mask=is_background)
        return {"base_sum": tf.reduce_sum(base), "background_sum": tf.reduce_sum(background),
                "base_count": tf.reduce_sum(is_base),
                "background_count": tf.reduce_sum(is_background), "p_hat": p_hat,
                "counts": counts}

    def total(self, terms, base_count, background_count):
        settings = self.config.pretraining
        return losses.total_loss(terms["base_sum"], terms["background_sum"], base_count,
                                 background_count, settings.alpha, settings.loss_normalization)

    def guide(self, model):
        """Sec. 2.3 (Eq. 5-7) on the model's centres; call in cross-replica context."""
        settings = self.config.pretraining
        state = model.state
        vectors = tf.transpose(model.class_vectors)  # {w_c} as rows
        guide = guidance.kmeans(vectors, tf.convert_to_tensor(state.kmeans_start),
                                settings.kmeans_iterations)
        centres = tf.convert_to_tensor(state.centres)
        mapped = guidance.map_guidance(guide, centres, settings.guidance)
        state.centres.assign(guidance.guidance_update(centres, guide, mapped,
                                                      settings.momentum))
        state.guidance.assign(guide)

    def make_train_step(self, model, optimizer, strategy):
        """One BCPT iteration over the replicas (module docstring, steps 1-3).

        `--jit_compile` is not applied here: the loss needs the replicas'
        pixel counts (an all-reduce) inside the gradient tape.
        """
        settings = self.config.pretraining
        variables = model.trainable_variables

        def replica_step(batch):
            context = tf.distribute.get_replica_context()
            with tf.GradientTape() as tape:
                terms = self.loss_terms(model, batch)
                base_count = context.all_reduce("sum", terms["base_count"])
                background_count = context.all_reduce("sum", terms["background_count"])
                # This replica's part of the global loss: the replicas' parts add up to it.
                loss = self.total(terms, base_count, background_count)
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return {"loss": loss,
                    "base_loss": terms["base_sum"] / tf.maximum(base_count, 1.0),
                    "bm_loss": terms["background_sum"] / tf.maximum(background_count, 1.0),
                    "p_hat": terms["p_hat"], "counts": terms["counts"]}

        @tf.function
        def train_step(distributed_batch):
            if settings.guidance != "none":
                self.guide(model)
            per_replica = strategy.run(replica_step, args=(distributed_batch,))
            summed = {name: strategy.reduce("sum", value, axis=None)
                      for name, value in per_replica.items()}
            state = model.state
            state.centres.assign(clustering.momentum_update(
                tf.convert_to_tensor(state.centres), summed.pop("p_hat"), summed.pop("counts"),
                settings.momentum))
            return summed

        return train_step

    def make_predict_fn(self, model):
        @tf.function(reduce_retracing=True)
        def predict(images):
            return model.segmentation_logits(images)

        return predict

    def describe(self, svf_trainable, other_trainable, steps_per_epoch, replicas):
        data, settings = self.config.data, self.config.pretraining
        del svf_trainable
        return (f"BCPT pre-training of {self.config.model.backbone}, {data.dataset} fold "
                f"{data.fold}: {len(self.classes.base)} base classes + K={settings.clusters} "
                f"background centres (mu {settings.momentum}, alpha {settings.alpha}, guidance "
                f"{settings.guidance}, {settings.softmax} softmax; "
                f"{self.num_train_images()} training images): {other_trainable:,} values "
                f"train; {steps_per_epoch} steps/epoch, {replicas} replica(s).")

    def on_new_best(self, model, run_dir):
        path = os.path.join(run_dir, "best", BACKBONE_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_weights_files((model.backbone, path))
        self.log(f"pre-trained backbone: --weights={path}")

    def summary_fields(self):
        settings = self.config.pretraining
        return {
            "backbone_weights": os.path.join(self.config.run_dir, "best", BACKBONE_FILE),
            "conventions": {
                "train_list": "the whole train list: no dagger filter (BAM BaseData)",
                "classes": f"{len(self.classes.base)} base classes + {settings.clusters} "
                           "background centres",
                "metric": "mean IoU over the base classes, background = the best centre, "
                          "pooled over the val images, 255 ignored, on the test canvas",
                "objective": "docs/bcpt.md",
            },
        }
