"""Few-shot heads and their blocks: the SVF baseline (ASPP), PFENet (FEM), BAM, PSPNet.

Each `build_*_model(backbone, ...)` puts a head on a functional backbone
from `svf_tf.backbones.build_backbone`; `svf_tf.models.build_fsss_model`
picks one by method name.
"""

from svf_tf.heads.aspp import ASPP
from svf_tf.heads.bam import build_bam_model
from svf_tf.heads.bam_ensemble import BAMEnsemble
from svf_tf.heads.baseline import build_baseline_model
from svf_tf.heads.classifier_head import ClassifierHead
from svf_tf.heads.fem import PFENET_BINS, FeatureEnrichment
from svf_tf.heads.gram_adjustment import GramAdjustment, cosine_gram, gram_distance
from svf_tf.heads.kshot_reduce import KShotReduce
from svf_tf.heads.kshot_weighting import KShotWeighting
from svf_tf.heads.pfenet import build_pfenet_model
from svf_tf.heads.ppm import PyramidPooling
from svf_tf.heads.prior_mask import PriorMask, cosine_prior
from svf_tf.heads.pspnet import PSPNetHead, build_pspnet_model

__all__ = ["ASPP", "BAMEnsemble", "ClassifierHead", "FeatureEnrichment", "GramAdjustment",
           "KShotReduce", "KShotWeighting", "PFENET_BINS", "PSPNetHead", "PriorMask",
           "PyramidPooling", "build_bam_model", "build_baseline_model", "build_pfenet_model",
           "build_pspnet_model", "cosine_gram", "cosine_prior", "gram_distance"]
