"""What a key map says about one PyTorch tensor: place it, skip it, or it is an alias.

A key map is a function `key -> Placement | Skip | Alias | None`; None means
the key matches nothing the map knows (the tensor is reported as unplaced).
Keras variables are named by their `variable.path`, e.g.
`layer1_0_conv1/kernel` or `pspnet_head/ppm/conv_bin1/kernel`.
"""

import dataclasses

from svf_tf.torch_import.layouts import CONV_KERNEL, VECTOR, Layout


@dataclasses.dataclass(frozen=True)
class Placement:
    """The tensor goes to the Keras variable `keras_path`, converted by `layout`."""

    keras_path: str
    layout: Layout


@dataclasses.dataclass(frozen=True)
class Skip:
    """The tensor has no Keras counterpart on purpose (e.g. an ImageNet classifier)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Alias:
    """The tensor is a second name of `primary_key` (one module registered twice).

    `if_different` is added to the report when the two tensors differ (then
    they are not one module, and the tensor is reported as unplaced).
    """

    primary_key: str
    if_different: str = ""


BN_COUNTER_SKIP = Skip("BatchNorm update counter; Keras keeps none (PyTorch reads it only "
                       "with momentum=None; the references use momentum 0.1)")

# PyTorch BatchNorm2d parameter/buffer -> Keras BatchNormalization variable.
_BN_VARIABLES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                 "running_var": "moving_variance"}


def conv_placement(keras_layer: str, param: str):
    """`weight`/`bias` of an `nn.Conv2d` -> the kernel/bias of Keras Conv2D `keras_layer`."""
    if param == "weight":
        return Placement(f"{keras_layer}/kernel", CONV_KERNEL)
    if param == "bias":
        return Placement(f"{keras_layer}/bias", VECTOR)
    return None


def batch_norm_placement(keras_layer: str, param: str):
    """A parameter or buffer of an `nn.BatchNorm2d` -> Keras BatchNormalization `keras_layer`."""
    if param == "num_batches_tracked":
        return BN_COUNTER_SKIP
    if param in _BN_VARIABLES:
        return Placement(f"{keras_layer}/{_BN_VARIABLES[param]}", VECTOR)
    return None
