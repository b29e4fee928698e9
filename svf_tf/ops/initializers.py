"""PyTorch's default initialisation for the heads' new layers (`nn.Conv2d.reset_parameters`).

PyTorch initialises `nn.Conv2d`/`nn.Linear` with `kaiming_uniform_(a=sqrt(5))`
on the weight, which is U(-1/sqrt(fan_in), +1/sqrt(fan_in)), and draws the
bias from the same interval. The ASPP convs of the references re-draw their
weights with `kaiming_normal_` (BAM `model/ASPP.py`, `ASPP._init_weight`;
fan_in, gain sqrt(2): N(0, 2/fan_in), not truncated) and keep the default
bias. Keras' defaults (glorot_uniform, zero bias) train differently, so every
conv of the heads is made here.

fan_in is kh * kw * in_channels for a conv (Keras' HWIO kernel) and
in_features for a dense layer, as in PyTorch.
"""

import math

import keras

# VarianceScaling(scale, "fan_in", "uniform") draws U(-sqrt(3*scale/fan_in), +...):
# scale 1/3 gives PyTorch's +-1/sqrt(fan_in).
_TORCH_UNIFORM_SCALE = 1.0 / 3.0


@keras.saving.register_keras_serializable(package="svf_tf")
class TorchBiasUniform(keras.initializers.Initializer):
    """PyTorch's default bias: U(-1/sqrt(fan_in), +1/sqrt(fan_in)).

    A bias initializer only sees the bias shape, so the layer's fan_in is
    stored here (and in the config).

    Args:
        fan_in: the fan-in of the layer's kernel (kh * kw * in_channels).
        seed: optional int seed.
    """

    def __init__(self, fan_in, seed=None):
        if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 1:
            raise ValueError(f"TorchBiasUniform: fan_in={fan_in!r} must be a positive int.")
        self.fan_in = fan_in
        self.seed = seed
        self._inner = keras.initializers.RandomUniform(
            -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in), seed=seed)

    def __call__(self, shape, dtype=None):
        return self._inner(shape, dtype=dtype)

    def get_config(self):
        return {"fan_in": self.fan_in, "seed": self.seed}


def torch_kernel_initializer():
    """PyTorch's default conv/linear weight: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))."""
    return keras.initializers.VarianceScaling(_TORCH_UNIFORM_SCALE, mode="fan_in",
                                              distribution="uniform")


def kaiming_normal_initializer():
    """PyTorch's `kaiming_normal_` (fan_in, ReLU gain): N(0, 2 / fan_in), untruncated."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_in",
                                              distribution="untruncated_normal")


def torch_conv2d(filters, kernel_size, in_channels=None, *, use_bias=False, dilation_rate=1,
                 activation=None, kernel_init="default", trainable=True, name=None):
    """A stride-1 "same" `keras.layers.Conv2D` initialised as PyTorch would.

    "same" padding with stride 1 is PyTorch's `padding = dilation * (k - 1) / 2`
    for the odd kernels the heads use.

    Args:
        filters: output channels.
        kernel_size: odd int.
        in_channels: input channels; needed (for the bias bound) when
            `use_bias`.
        use_bias: whether the conv has a bias (PyTorch-default initialised).
        dilation_rate: int.
        activation: e.g. "relu" (the references' Conv + ReLU pairs).
        kernel_init: "default" (kaiming_uniform, a=sqrt(5)) or
            "kaiming_normal" (the ASPP convs).
        trainable: layer trainability.
        name: layer name.

    Returns:
        An unbuilt `keras.layers.Conv2D`.
    """
    if kernel_init not in ("default", "kaiming_normal"):
        raise ValueError(
            f"kernel_init={kernel_init!r} is not accepted: use 'default' (PyTorch's "
            "kaiming_uniform(a=sqrt(5))) or 'kaiming_normal' (the references' ASPP).")
    if kernel_size % 2 != 1:
        raise ValueError(f"torch_conv2d: kernel_size={kernel_size} must be odd.")
    if use_bias and not (isinstance(in_channels, int) and in_channels >= 1):
        raise ValueError(
            f"torch_conv2d: use_bias=True needs in_channels (a positive int) for PyTorch's "
            f"bias bound 1/sqrt(fan_in); got in_channels={in_channels!r}.")
    return keras.layers.Conv2D(
        filters, kernel_size, padding="same", dilation_rate=dilation_rate, use_bias=use_bias,
        activation=activation,
        kernel_initializer=(torch_kernel_initializer() if kernel_init == "default"
                            else kaiming_normal_initializer()),
        bias_initializer=(TorchBiasUniform(kernel_size * kernel_size * in_channels)
                          if use_bias else "zeros"),
        trainable=trainable, name=name)


def torch_dense(units, in_features, *, activation=None, name=None):
    """A `keras.layers.Dense` with PyTorch's default weight and bias initialisation.

    Equivalent to a 1x1 `nn.Conv2d` applied to a [B, in_features, 1, 1] tensor
    (BAM's k-shot re-weighting).
    """
    return keras.layers.Dense(units, activation=activation,
                              kernel_initializer=torch_kernel_initializer(),
                              bias_initializer=TorchBiasUniform(in_features), name=name)
