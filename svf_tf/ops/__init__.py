"""Generic Keras ops with PyTorch semantics, used by the heads but not specific to them.

Adaptive average pooling, align-corners resizing, masked average pooling, a
safe L2 norm, broadcasting, and PyTorch's default initialisers.
"""

from svf_tf.ops.adaptive_avg_pool import (
    AdaptiveAveragePooling,
    adaptive_average_pool,
    adaptive_pool_matrix,
)
from svf_tf.ops.align_corners_resize import AlignCornersResize, resize_align_corners
from svf_tf.ops.broadcast_like import BroadcastLike
from svf_tf.ops.initializers import TorchBiasUniform, torch_conv2d
from svf_tf.ops.masked_average_pooling import MaskedAveragePooling, masked_average_pooling

__all__ = ["AdaptiveAveragePooling", "AlignCornersResize", "BroadcastLike",
           "MaskedAveragePooling", "TorchBiasUniform", "adaptive_average_pool",
           "adaptive_pool_matrix", "masked_average_pooling", "resize_align_corners",
           "torch_conv2d"]
