"""PSPNet's pyramid pooling module, PPM (BAM `model/PPM.py`, `PPM`; BAM stage 1)."""

import keras
import tensorflow as tf

from svf_tf.heads.classifier_head import TORCH_BN_EPSILON, TORCH_BN_MOMENTUM
from svf_tf.ops.adaptive_avg_pool import adaptive_average_pool
from svf_tf.ops.align_corners_resize import resize_align_corners, spatial_size
from svf_tf.ops.initializers import torch_conv2d

PPM_BINS = (1, 2, 3, 6)


@keras.saving.register_keras_serializable(package="svf_tf")
class PyramidPooling(keras.layers.Layer):
    """concat[x, up(relu(bn(conv1x1(adaptive_pool(x, b))))) for b in bins].

    Per bin: PyTorch adaptive average pooling to b x b (overlapping windows,
    e.g. 81 -> 6 on COCO), 1x1 conv without bias to `in_channels / 4`, BN,
    ReLU, bilinear align_corners resize back to the input size. With the
    default bins 2048 channels in give 4096 out (ResNet-50), 512 give 1024
    (VGG).

    Args:
        in_channels: input channels.
        bins: pooled sizes.
        reduction_dim: channels per branch; default in_channels // len(bins).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, in_channels, bins=PPM_BINS, reduction_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.bins = tuple(bins)
        self.reduction_dim = reduction_dim or in_channels // len(self.bins)
        self.convs = [torch_conv2d(self.reduction_dim, 1, name=f"conv_bin{b}") for b in self.bins]
        self.norms = [keras.layers.BatchNormalization(epsilon=TORCH_BN_EPSILON,
                                                      momentum=TORCH_BN_MOMENTUM,
                                                      name=f"bn_bin{b}") for b in self.bins]

    def build(self, input_shape):
        if input_shape[-1] != self.in_channels:
            raise ValueError(
                f"PyramidPooling '{self.name}' was made for {self.in_channels} input channels "
                f"but is called on shape {tuple(input_shape)}.")
        for conv, norm in zip(self.convs, self.norms, strict=True):
            conv.build((None, None, None, self.in_channels))
            norm.build((None, None, None, self.reduction_dim))
        self.built = True

    def call(self, inputs, training=None):
        size = spatial_size(inputs)
        branches = [inputs]
        for pyramid_bin, conv, norm in zip(self.bins, self.convs, self.norms, strict=True):
            x = adaptive_average_pool(inputs, (pyramid_bin, pyramid_bin))
            x = tf.nn.relu(norm(conv(x), training=training))
            branches.append(resize_align_corners(x, size))
        return tf.concat(branches, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.in_channels + self.reduction_dim * len(self.bins))

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "bins": self.bins,
                "reduction_dim": self.reduction_dim}
