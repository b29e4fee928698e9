"""ResNet-50 at output stride 8, rewritten from `keras.applications.ResNet50`."""

import re

import keras

from svf_tf.backbones.backbone_bn import batch_norm_layer
from svf_tf.backbones.deep_stem import (
    KERAS_BLOCK_NAME,
    TORCH_BN_EPSILON,
    deep_stem_layers,
    torch_block_name,
)
from svf_tf.backbones.graph_rewrite import clone_layer, rewrite_application
from svf_tf.weights.pretrained import load_weights_file, resolve_weights

# Dilation of the 3x3 convs per stage: (first block, other blocks). The
# strides of these stages become 1, so layer2..layer4 share one resolution.
DILATIONS = {
    # PFENet/BAM's loop over every block (D1: BAM `model/PSPNet.py`
    # `OneModel.__init__`, PFENet `model/PFENet.py` `PFENet.__init__`).
    "all_blocks": {3: (2, 2), 4: (4, 4)},
    # torchvision replace_stride_with_dilation=[False, True, True]: each
    # stage's first block keeps the previous dilation (D2; the SVF authors'
    # baseline and PFENet, SVF code `model/module/resnet.py` `ResNet.__init__`).
    "torchvision": {3: (1, 2), 4: (2, 4)},
    # Plain ResNet-50, output stride 32 (for checks against Keras).
    "none": {},
}
STEMS = ("keras", "deep")
_DEEP_POOL_NAMES = {"pool1_pad": "maxpool_pad", "pool1_pool": "maxpool"}
_DEEP_STEM_REPLACES = ("conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu")

# The last layer of each stage in Keras' graph: its output is layer{stage}.
ENDPOINTS = {"pool1_pool": 0, "conv2_block3_out": 1, "conv3_block4_out": 2,
             "conv4_block6_out": 3, "conv5_block3_out": 4}


def keras_stage(name: str) -> int:
    """Stage (layer0..layer4) of a layer of Keras' ResNet50 graph."""
    match = re.match(r"^(?:conv|pool)(\d)_", name)
    if not match:
        raise ValueError(f"internal: {name!r} is not a Keras ResNet50 layer name")
    return int(match[1]) - 1


def block_geometry(stage: int, block: int, dilation: str):
    """(stride, dilation rate) of block `block` of stage `stage`."""
    if stage in DILATIONS[dilation]:
        first, rest = DILATIONS[dilation][stage]
        return 1, first if block == 0 else rest
    return (2 if block == 0 and stage >= 2 else 1), 1


def _block_conv_config(part: str, stride: int, rate: int, deep: bool) -> dict:
    """Strides/dilation (and bias) of bottleneck conv `part` ("0_conv".."3_conv").

    The block stride goes on the shortcut ("0_conv") and on the first 1x1
    conv ("1_conv") in Keras' layout, on the 3x3 ("2_conv") in torchvision's.
    """
    strided = ("0_conv", "2_conv" if deep else "1_conv")
    config = {"strides": (stride, stride) if part in strided else (1, 1)}
    if part == "2_conv":
        config["dilation_rate"] = (rate, rate)
    if deep:
        config["use_bias"] = False
    return config


def resnet50_backbone(inputs, weights=None, *, stem="keras", dilation="all_blocks",
                      bn_epsilon=None, backbone_bn="frozen", cut_before=0,
                      name="resnet50_backbone", partial_weights=False):
    """ResNet-50 features layer0..layer4 as a functional model.

    The graph of `keras.applications.ResNet50(include_top=False)` is re-run
    layer by layer (`rewrite_application`), changing only:
    - every BatchNormalization becomes a `FrozenBatchNormalization` (fix_bn),
      or a `TorchBatchNormalization` for backbone_bn="batch_stats", with
      `bn_epsilon` if given;
    - for output stride 8, conv4_x (layer3) and conv5_x (layer4) lose their
      stride and their 3x3 convs are dilated per `dilation` (D1 "all_blocks"
      or D2 "torchvision", see `DILATIONS`). Keras "same" padding
      of a stride-1 3x3 conv with dilation d pads d on each side, which is
      the references' `padding=dilation`.

    Where the stride sits. Keras' ResNet50 is the Caffe-style v1 network:
    the stride of a block is on its first 1x1 conv (and the 1x1 shortcut);
    the references' torchvision bottleneck ("v1.5") puts it on the 3x3 conv.
    With stem="keras" the stride stays on the 1x1 conv, because that is the
    network Keras' ImageNet weights were trained as; at output stride 8 this
    only concerns the first block of layer2 (conv3_block1). With stem="deep"
    the network is the references' and the stride is on the 3x3 conv.

    Stems:
    - "keras": Keras' 7x7 stride-2 conv (64 channels out of layer0), Keras'
      layer names (conv1_conv, conv2_block1_1_conv, ...), conv biases,
      ImageNet weights from Keras (which expect
      `keras.applications.resnet.preprocess_input`, i.e. Caffe-style BGR).
    - "deep": the references' deep stem and torchvision bottlenecks
      (`deep_stem.py`: 128 channels out of layer0, no conv biases, PyTorch
      names and padding); weights come from a converted PyTorch checkpoint.

    Feature sizes for a 473 (641) input at output stride 8: layer0 and layer1
    119 (161), layer2..layer4 60 (81); channels 64 or 128 (deep), 256, 512,
    1024, 2048 (BAM/PFENet `model/resnet.py`).

    Args:
        inputs: a `keras.Input` of shape (H, W, 3).
        weights: None, "imagenet" (stem="keras" only) or a file path. With
            stem="keras" a file is a Keras ResNet50 weights file (what
            `keras.applications.ResNet50(weights=path)` reads); with
            stem="deep" it is a weights file of this backbone
            (`backbone.save_weights`, or a converted checkpoint).
        stem: "keras" or "deep".
        dilation: "all_blocks", "torchvision" or "none" (output stride 32).
        bn_epsilon: BN epsilon; None keeps Keras' 1.001e-5 for stem="keras"
            and uses PyTorch's 1e-5 for stem="deep".
        backbone_bn: "frozen" or "batch_stats" (see `build_backbone`).
        cut_before: first stage that trains; earlier outputs stop gradients.
        name: model name.
        partial_weights: accept a weights file that sets only some layers
            (see `svf_tf.weights.pretrained.load_weights_file`).

    Returns:
        (model, stages): a `keras.Model` with outputs {"layer0": ..,
        "layer4": ..}, and {layer name: stage}.
    """
    if stem not in STEMS:
        raise ValueError(f"stem={stem!r} is not accepted: use one of {STEMS}.")
    if dilation not in DILATIONS:
        raise ValueError(
            f"dilation={dilation!r} is not accepted: use 'all_blocks' (PFENet/BAM), "
            "'torchvision' (SVF baseline and PFENet in the SVF code) or 'none'.")
    deep = stem == "deep"
    path = resolve_weights(weights, None if deep else "resnet50")
    source = keras.applications.ResNet50(include_top=False, weights=None,
                                         input_shape=(None, None, 3))
    if path and not deep:
        load_weights_file(source, path, "keras.applications.ResNet50(include_top=False)",
                          partial=partial_weights)

    if bn_epsilon is None and deep:
        bn_epsilon = TORCH_BN_EPSILON
    bn_class, bn_config = batch_norm_layer(backbone_bn)
    if bn_epsilon is not None:
        bn_config["epsilon"] = float(bn_epsilon)

    def replace(layer):
        name = layer.name
        if deep and name in _DEEP_STEM_REPLACES:
            return deep_stem_layers(bn_epsilon, backbone_bn) if name == "conv1_pad" else []
        if deep and name in _DEEP_POOL_NAMES:
            # Zero padding is PyTorch's -inf padding here: the input is a ReLU output.
            return [clone_layer(layer, name=_DEEP_POOL_NAMES[name])]
        match = KERAS_BLOCK_NAME.match(name)
        config = {"name": torch_block_name(name)} if deep and match else {}
        if isinstance(layer, keras.layers.BatchNormalization):
            return [clone_layer(layer, cls=bn_class, copy_weights=not deep, **config,
                                **bn_config)]
        if isinstance(layer, keras.layers.Conv2D) and match:
            stride, rate = block_geometry(int(match[1]) - 1, int(match[2]) - 1, dilation)
            config.update(_block_conv_config(match[3], stride, rate, deep))
            if deep and stride == 2 and match[3] == "2_conv":
                # PyTorch pads 1 on both sides; Keras "same" would pad 0/1 on even sizes.
                config["padding"] = "valid"
                return [keras.layers.ZeroPadding2D(1, name=config["name"] + "_pad"),
                        clone_layer(layer, copy_weights=False, **config)]
        return [clone_layer(layer, copy_weights=not deep, **config)]

    features, stages = rewrite_application(source, inputs, replace, ENDPOINTS, keras_stage,
                                           cut_before)
    model = keras.Model(inputs, features, name=name)
    if path and deep:
        load_weights_file(model, path, f"the deep-stem ResNet-50 backbone ({dilation=})",
                          partial=partial_weights)
    return model, stages
