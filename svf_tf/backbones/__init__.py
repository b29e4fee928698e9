"""Backbones for the few-shot heads: ResNet-50 and VGG16 features layer0..layer4."""

from svf_tf.backbones.backbone_bn import check_backbone_bn
from svf_tf.backbones.build_backbone import BACKBONES, build_backbone, check_input_shape
from svf_tf.backbones.frozen_batch_norm import FrozenBatchNormalization
from svf_tf.backbones.stop_gradient import StopGradient
from svf_tf.backbones.torch_batch_norm import TorchBatchNormalization
from svf_tf.config.finetune_spec import FinetuneSpec
from svf_tf.constants import BACKBONE_BN
from svf_tf.weights.pretrained import (
    KERAS_IMAGENET_WEIGHTS,
    keras_cache_dir,
    resolve_weights,
)

__all__ = ["BACKBONES", "BACKBONE_BN", "KERAS_IMAGENET_WEIGHTS", "FinetuneSpec",
           "FrozenBatchNormalization", "StopGradient", "TorchBatchNormalization",
           "build_backbone", "check_backbone_bn", "check_input_shape", "keras_cache_dir",
           "resolve_weights"]
