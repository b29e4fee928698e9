"""VGG16 (and VGG16-BN) split as the references split it, from `keras.applications.VGG16`."""

import re

import keras

from svf_tf.backbones.backbone_bn import batch_norm_layer
from svf_tf.backbones.deep_stem import TORCH_BN_EPSILON
from svf_tf.backbones.graph_rewrite import clone_layer, rewrite_application
from svf_tf.weights.pretrained import load_weights_file, resolve_weights

# layer0..layer3 end with the pool of blocks 1..4; layer4 is block 5 without
# its pool (`get_vgg16_layer` in BAM `model/PSPNet.py` / PFENet `model/PFENet.py`).
ENDPOINTS = {"block1_pool": 0, "block2_pool": 1, "block3_pool": 2, "block4_pool": 3,
             "block5_conv3": 4}


def keras_stage(name: str) -> int:
    """Stage (layer0..layer4) of a layer of Keras' VGG16 graph: block b -> b-1."""
    match = re.match(r"^block(\d)_", name)
    if not match:
        raise ValueError(f"internal: {name!r} is not a Keras VGG16 layer name")
    return int(match[1]) - 1


def vgg16_backbone(inputs, weights=None, *, batch_norm=False, bn_epsilon=None,
                   backbone_bn="frozen", cut_before=0, name="vgg16_backbone",
                   partial_weights=False):
    """VGG16 features layer0..layer4 as a functional model.

    The graph of `keras.applications.VGG16(include_top=False)` is re-run
    layer by layer, changing only:
    - max-pools use "same" padding, which for a 2x2 stride-2 pool is PyTorch's
      `ceil_mode=True` (an odd size n gives ceil(n/2); the last window holds
      one row/column, and TF's "same" max-pool ignores the padding), so 473
      gives 237/119/60/30/30 as in the references (BAM `model/vgg.py`,
      `make_layers`: `MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)`);
    - block5_pool is dropped: layer4 is block5_conv3;
    - with `batch_norm=True` (VGG16-BN, the references' actual VGG), each conv
      loses its fused ReLU and is followed by `FrozenBatchNormalization`
      (`TorchBatchNormalization` for backbone_bn="batch_stats";
      `block{b}_bn{i}`) and ReLU (`block{b}_relu{i}`). Convs keep their bias.

    Converting torchvision's vgg16_bn: the k-th conv of `features` (indices
    0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40) is the k-th conv here in
    block order (block1_conv1, block1_conv2, block2_conv1, ...), and the BN
    at index+1 is the matching block{b}_bn{i}.

    Feature sizes for 473 (641): 237 (321), 119 (161), 60 (81), 30 (41),
    30 (41); channels 64, 128, 256, 512, 512.

    Args:
        inputs: a `keras.Input` of shape (H, W, 3).
        weights: None, "imagenet" (plain VGG16 only; Keras' file) or a file
            path: a Keras VGG16 weights file for the plain network, a weights
            file of this backbone (`backbone.save_weights`, or a converted
            checkpoint) for VGG16-BN.
        batch_norm: build VGG16-BN.
        bn_epsilon: BN epsilon (VGG16-BN); default PyTorch's 1e-5.
        backbone_bn: "frozen" or "batch_stats" (VGG16-BN; see `build_backbone`).
        cut_before: first stage that trains; earlier outputs stop gradients.
        name: model name.
        partial_weights: accept a weights file that sets only some layers
            (see `svf_tf.weights.pretrained.load_weights_file`).

    Returns:
        (model, stages): a `keras.Model` with outputs {"layer0": ..,
        "layer4": ..}, and {layer name: stage}.
    """
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm={batch_norm!r} must be True or False.")
    if bn_epsilon is not None and not batch_norm:
        raise ValueError(
            f"bn_epsilon={bn_epsilon!r} has no effect on VGG16, which has no BatchNorm; use "
            "batch_norm=True for VGG16-BN.")
    if backbone_bn != "frozen" and not batch_norm:
        raise ValueError(
            f"backbone_bn={backbone_bn!r} has no effect on VGG16, which has no BatchNorm; use "
            "batch_norm=True for VGG16-BN.")
    path = resolve_weights(weights, None if batch_norm else "vgg16")
    source = keras.applications.VGG16(include_top=False, weights=None,
                                      input_shape=(None, None, 3))
    if path and not batch_norm:
        load_weights_file(source, path, "keras.applications.VGG16(include_top=False)",
                          partial=partial_weights)
    epsilon = TORCH_BN_EPSILON if bn_epsilon is None else float(bn_epsilon)
    bn_class, bn_config = batch_norm_layer(backbone_bn)

    def replace(layer):
        if isinstance(layer, keras.layers.MaxPooling2D):
            return [] if layer.name == "block5_pool" else [clone_layer(layer, padding="same")]
        if isinstance(layer, keras.layers.Conv2D) and batch_norm:
            return [clone_layer(layer, activation="linear"),
                    bn_class(epsilon=epsilon, name=layer.name.replace("_conv", "_bn"),
                             **bn_config),
                    keras.layers.ReLU(name=layer.name.replace("_conv", "_relu"))]
        return [clone_layer(layer)]

    features, stages = rewrite_application(source, inputs, replace, ENDPOINTS, keras_stage,
                                           cut_before)
    model = keras.Model(inputs, features, name=name)
    if path and batch_norm:
        load_weights_file(model, path, "the VGG16-BN backbone", partial=partial_weights)
    return model, stages
