"""`backbone_bn`: which BatchNorm layer the backbones are built with."""

from svf_tf.backbones.frozen_batch_norm import FrozenBatchNormalization
from svf_tf.backbones.torch_batch_norm import TORCH_BN_MOMENTUM, TorchBatchNormalization
from svf_tf.constants import BACKBONE_BN


def check_backbone_bn(backbone_bn) -> str:
    """Validates `backbone_bn` ("frozen" or "batch_stats") and returns it."""
    if backbone_bn not in BACKBONE_BN:
        raise ValueError(
            f"backbone_bn={backbone_bn!r} is not accepted: use one of {BACKBONE_BN} ('frozen' "
            "= running statistics always, BAM/SVF fix_bn; 'batch_stats' = batch statistics "
            "in training, as PFENet's own train.py).")
    return backbone_bn


def batch_norm_layer(backbone_bn):
    """(class, config overrides) of a backbone BatchNorm for a checked `backbone_bn`.

    "frozen": `FrozenBatchNormalization`. "batch_stats":
    `TorchBatchNormalization` with PyTorch's momentum (the Keras ResNet50 graph
    the backbones are rewritten from has Keras' 0.99).
    """
    if backbone_bn == "batch_stats":
        return TorchBatchNormalization, {"momentum": TORCH_BN_MOMENTUM}
    return FrozenBatchNormalization, {}
