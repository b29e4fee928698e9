"""The ASPP of the SVF baseline and of BAM's meta learner (BAM `model/ASPP.py`, `ASPP`)."""

import keras
from keras import ops

from svf_tf.ops.initializers import torch_conv2d

ASPP_RATES = (6, 12, 18)


@keras.saving.register_keras_serializable(package="svf_tf")
class ASPP(keras.layers.Layer):
    """Atrous spatial pyramid pooling without BatchNorm, as BAM/SVF use it.

    Five branches, each a conv with bias + ReLU, concatenated in this order:
    [global (mean over the map -> 1x1 conv -> broadcast back), 1x1 conv,
    3x3 dilation 6, 3x3 dilation 12, 3x3 dilation 18], so 256 channels in
    give 5 * 256 = 1280 out. Conv weights are kaiming_normal (fan_in,
    gain sqrt 2) and biases PyTorch's default, as in the references. A
    dilated 3x3 with "same" padding pads `rate` on each side, the references'
    `padding=rate`.

    Args:
        in_channels: input channels (for PyTorch's bias bound).
        filters: channels per branch (256).
        rates: dilation rates of the three 3x3 branches.
        **kwargs: base `Layer` arguments.

    Returns (call): [B, H, W, 5 * filters].
    """

    def __init__(self, in_channels, filters=256, rates=ASPP_RATES, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.filters = filters
        self.rates = tuple(rates)

        def conv(kernel, rate, name):
            return torch_conv2d(filters, kernel, in_channels, use_bias=True, dilation_rate=rate,
                                activation="relu", kernel_init="kaiming_normal", name=name)

        self.global_conv = conv(1, 1, "global_conv")
        self.point_conv = conv(1, 1, "conv_1x1")
        self.atrous_convs = [conv(3, rate, f"conv_3x3_rate{rate}") for rate in self.rates]

    def build(self, input_shape):
        if input_shape[-1] != self.in_channels:
            raise ValueError(
                f"ASPP '{self.name}' was made for {self.in_channels} input channels but is "
                f"called on shape {tuple(input_shape)}.")
        self.global_conv.build((input_shape[0], 1, 1, self.in_channels))
        self.point_conv.build(input_shape)
        for layer in self.atrous_convs:
            layer.build(input_shape)
        self.built = True

    def call(self, inputs):
        pooled = self.global_conv(ops.mean(inputs, axis=(1, 2), keepdims=True))
        shape = ops.shape(inputs)
        pooled = ops.broadcast_to(pooled, (shape[0], shape[1], shape[2], self.filters))
        branches = [pooled, self.point_conv(inputs)]
        branches += [layer(inputs) for layer in self.atrous_convs]
        return ops.concatenate(branches, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters * (2 + len(self.rates)))

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels,
                "filters": self.filters, "rates": self.rates}
