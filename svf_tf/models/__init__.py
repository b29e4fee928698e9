"""Few-shot segmentation models: the SVF baseline, PFENet and BAM, with their building blocks.

    from svf_tf.models import build_fsss_model, fsss_loss
    model = build_fsss_model("pfenet", "resnet50", shot=1, finetune="svf")
    outputs = model(batch, training=True)   # batch: a data pipeline element
    loss = fsss_loss("pfenet", outputs, batch)["loss"]
"""

from svf_tf.models.adaptive_avg_pool import (
    AdaptiveAveragePooling,
    adaptive_average_pool,
    adaptive_pool_matrix,
)
from svf_tf.models.align_corners_resize import AlignCornersResize, resize_align_corners
from svf_tf.models.aspp import ASPP
from svf_tf.models.bam_ensemble import BAMEnsemble
from svf_tf.models.bam_model import build_bam_model
from svf_tf.models.baseline_model import build_baseline_model
from svf_tf.models.broadcast_like import BroadcastLike
from svf_tf.models.build_model import METHODS, build_fsss_model, default_backbone_options
from svf_tf.models.classifier_head import ClassifierHead
from svf_tf.models.episode_inputs import EpisodeInputs, episode_inputs
from svf_tf.models.fem import PFENET_BINS, FeatureEnrichment
from svf_tf.models.gram_adjustment import GramAdjustment, cosine_gram, gram_distance
from svf_tf.models.kshot_reduce import KShotReduce
from svf_tf.models.kshot_weighting import KShotWeighting
from svf_tf.models.losses import (
    bam_loss,
    baseline_loss,
    fsss_loss,
    masked_cross_entropy,
    pfenet_loss,
)
from svf_tf.models.masked_average_pooling import MaskedAveragePooling, masked_average_pooling
from svf_tf.models.pfenet_model import build_pfenet_model
from svf_tf.models.ppm import PyramidPooling
from svf_tf.models.prior_mask import PriorMask, cosine_prior
from svf_tf.models.pspnet_base_learner import PSPNetHead, build_pspnet_model
from svf_tf.models.saved_model_export import export_fsss_model
from svf_tf.models.torch_init import TorchBiasUniform, torch_conv2d

__all__ = [
    "ASPP", "AdaptiveAveragePooling", "AlignCornersResize", "BAMEnsemble", "BroadcastLike",
    "ClassifierHead", "EpisodeInputs", "FeatureEnrichment", "GramAdjustment", "KShotReduce",
    "KShotWeighting", "METHODS", "MaskedAveragePooling", "PFENET_BINS", "PSPNetHead",
    "PriorMask", "PyramidPooling", "TorchBiasUniform", "adaptive_average_pool",
    "adaptive_pool_matrix", "bam_loss", "baseline_loss", "build_bam_model",
    "build_baseline_model", "build_fsss_model", "build_pfenet_model", "build_pspnet_model",
    "cosine_gram", "cosine_prior", "default_backbone_options", "episode_inputs",
    "export_fsss_model", "fsss_loss", "gram_distance", "masked_average_pooling",
    "masked_cross_entropy", "pfenet_loss", "resize_align_corners", "torch_conv2d",
]
