"""Whole few-shot networks: a backbone and a head, by method name, with their inputs and losses.

    from svf_tf.models import build_fsss_model, fsss_loss
    model = build_fsss_model("pfenet", "resnet50", shot=1, finetune="svf")
    outputs = model(batch, training=True)   # batch: a data pipeline element
    loss = fsss_loss("pfenet", outputs, batch)["loss"]

The heads themselves (ASPP baseline, PFENet, BAM, PSPNet) and their blocks
are in `svf_tf.heads`; generic Keras ops in `svf_tf.ops`.
"""

from svf_tf.heads.episode_inputs import EpisodeInputs, episode_inputs
from svf_tf.models.build_model import METHODS, build_fsss_model, default_backbone_options
from svf_tf.models.losses import (
    bam_loss,
    baseline_loss,
    fsss_loss,
    masked_cross_entropy,
    pfenet_loss,
)

__all__ = ["EpisodeInputs", "METHODS", "bam_loss", "baseline_loss", "build_fsss_model",
           "default_backbone_options", "episode_inputs", "fsss_loss", "masked_cross_entropy",
           "pfenet_loss"]
