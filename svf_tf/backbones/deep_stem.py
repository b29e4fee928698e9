"""The deep stem of the references' ResNet-50 and its PyTorch-compatible names.

PSPNet's "resnet50_v2" (the ImageNet checkpoint PFENet, BAM and SVF load;
BAM/PFENet `model/resnet.py`, `ResNet.__init__` with `deep_base=True`)
replaces ResNet's 7x7 stem by three 3x3 convs (3->64 stride 2, 64->64,
64->128), each followed by BN and ReLU, then a 3x3 stride-2 max-pool with
padding 1. Its bottlenecks are torchvision's: stride
on the 3x3 conv ("v1.5"), no conv biases, and layer1 starts from 128
channels.

Layer names are the PyTorch module paths with "." replaced by "_", so a
checkpoint key maps onto a layer by `key.rsplit(".", 1)[0].replace(".", "_")`:

| PyTorch key (resnet50_v2.pth)          | Keras layer / weight                      |
|----------------------------------------|-------------------------------------------|
| conv1.weight, conv2.*, conv3.*         | conv1, conv2, conv3: kernel (OIHW->HWIO)  |
| bn1.{weight,bias,running_mean,running_var} | bn1: gamma, beta, moving_mean, moving_variance |
| layer1.0.conv1.weight                  | layer1_0_conv1: kernel                    |
| layer1.0.bn1.*                         | layer1_0_bn1                              |
| layer1.0.downsample.0.weight           | layer1_0_downsample_0: kernel             |
| layer1.0.downsample.1.*                | layer1_0_downsample_1                     |

(BAM's stage-1 PSPNet checkpoints wrap the stem in `layer0`, a Sequential:
layer0.0/1 = conv1/bn1, layer0.3/4 = conv2/bn2, layer0.6/7 = conv3/bn3.)
"""

import re

import keras

from svf_tf.backbones.backbone_bn import batch_norm_layer

# Keras' ResNet block layer names: conv{stage+1}_block{block+1}_{part}.
KERAS_BLOCK_NAME = re.compile(r"^conv(\d)_block(\d+)_(.+)$")

# PyTorch's BatchNorm2d default, which the converted checkpoints assume.
TORCH_BN_EPSILON = 1e-5


def deep_stem_layers(bn_epsilon=None, backbone_bn="frozen"):
    """The deep stem up to its last ReLU (the max-pool comes from Keras' graph).

    The first conv has stride 2: it gets an explicit 1-pixel ZeroPadding2D
    and "valid" padding, because Keras "same" pads stride-2 convs
    asymmetrically (0 before, 1 after) on even sizes where PyTorch pads 1 on
    both sides. The stride-1 convs use "same", which is PyTorch's padding 1.

    Args:
        bn_epsilon: BN epsilon; default PyTorch's 1e-5.
        backbone_bn: "frozen" or "batch_stats" (see `build_backbone`).

    Returns:
        A list of layers to apply in sequence.
    """
    epsilon = TORCH_BN_EPSILON if bn_epsilon is None else float(bn_epsilon)
    bn_class, bn_config = batch_norm_layer(backbone_bn)
    layers = [keras.layers.ZeroPadding2D(1, name="conv1_pad")]
    for index, (filters, strides) in enumerate(((64, 2), (64, 1), (128, 1)), start=1):
        layers += [
            keras.layers.Conv2D(filters, 3, strides=strides,
                                padding="valid" if strides == 2 else "same", use_bias=False,
                                name=f"conv{index}"),
            bn_class(epsilon=epsilon, name=f"bn{index}", **bn_config),
            keras.layers.ReLU(name=f"relu{index}"),
        ]
    return layers


def torch_block_name(keras_name: str) -> str:
    """The PyTorch-style name of a layer of a Keras ResNet bottleneck.

    `conv3_block1_2_conv` -> `layer2_0_conv2`, `conv3_block1_0_bn` ->
    `layer2_0_downsample_1`, `conv3_block1_out` -> `layer2_0_out`.
    """
    match = KERAS_BLOCK_NAME.match(keras_name)
    if not match:
        raise ValueError(f"internal: {keras_name!r} is not a Keras ResNet block layer")
    stage, block, part = int(match[1]) - 1, int(match[2]) - 1, match[3]
    part = {"0_conv": "downsample_0", "0_bn": "downsample_1"}.get(part) or re.sub(
        r"^(\d)_(conv|bn|relu)$", r"\2\1", part)
    return f"layer{stage}_{block}_{part}"
