"""The network of synthetic pre-training: a backbone under a shape head and a texture head.

A corpus class is a (shape, texture) pair (`svf_tf.data.synthetic.pretraining`),
so the classifier is factored into two heads on layer4, one per factor:
each of the 10 shapes (and each of the 10 textures) is seen in ten times as
many objects as each of the 100 pairs, which is what lets a backbone trained
from scratch learn in minutes; the pair is their combination (`predict_classes`).

- "dense": two 1x1 convolutions on layer4, each to background + 10 classes,
  resized to the input (align_corners): the per-pixel shape and texture.
- "classification": global average pooling of layer4 and two linear layers
  to 10 classes: the main object's shape and texture.

ResNet-50 starts with the last BatchNorm of every residual branch at
gamma = 0, so each block starts as the identity (Goyal et al. 2017,
"Accurate, Large Minibatch SGD", Sec. 5.1; torchvision's
`zero_init_residual`), the usual aid to training a ResNet from scratch; the
runs measured in `svf_tf.data.synthetic.pretraining` used it (its effect
alone was not measured).
"""

import re

import keras
import tensorflow as tf

from svf_tf.backbones import build_backbone
from svf_tf.constants import IGNORE_LABEL
from svf_tf.data.synthetic.scene import SHAPES, TEXTURES
from svf_tf.models.losses import masked_cross_entropy
from svf_tf.ops.align_corners_resize import AlignCornersResize

HEADS = ("shape", "texture")
# The last BatchNorm of a residual branch: Keras' names (conv2_block1_3_bn) and the deep
# stem's PyTorch ones (layer1_0_bn3).
_RESIDUAL_BN = re.compile(r"(_3_bn|^layer\d_\d+_bn3)$")


def zero_init_residual(backbone):
    """Sets gamma = 0 in the last BatchNorm of every ResNet residual branch; returns how many."""
    count = 0
    for layer in backbone.layers:
        if _RESIDUAL_BN.search(layer.name) and getattr(layer, "gamma", None) is not None:
            layer.gamma.assign(tf.zeros_like(layer.gamma))
            count += 1
    return count


def build_pretrain_model(backbone, target, size, backbone_options):
    """The backbone (randomly initialised, all trainable) under the two heads of `target`.

    Args:
        backbone: "resnet50" or "vgg16".
        target: "dense" or "classification" (module docstring).
        size: the square input side.
        backbone_options: `build_backbone` keywords (stem, dilation,
            batch_norm, backbone_bn).

    Returns:
        A `keras.Model` image [B, size, size, 3] -> {"shape": logits,
        "texture": logits} ([B, size, size, 11] dense, [B, 10]
        classification); the backbone is its nested model "<backbone>_backbone".
    """
    features = build_backbone(backbone, None, input_shape=(size, size, 3), finetune="full",
                              **backbone_options)
    if backbone == "resnet50":
        zero_init_residual(features)
    image = keras.Input((size, size, 3), name="image")
    layer4 = features(image)["layer4"]
    outputs = {}
    if target == "dense":
        for name, classes in zip(HEADS, (SHAPES, TEXTURES), strict=True):
            logits = keras.layers.Conv2D(len(classes) + 1, 1, name=f"{name}_classifier")(layer4)
            outputs[name] = AlignCornersResize(size=(size, size), name=f"{name}_upsample")(logits)
    else:
        pooled = keras.layers.GlobalAveragePooling2D(name="pool")(layer4)
        for name, classes in zip(HEADS, (SHAPES, TEXTURES), strict=True):
            outputs[name] = keras.layers.Dense(len(classes), name=f"{name}_classifier")(pooled)
    return keras.Model(image, outputs, name="synthetic_pretrain")


def factor_labels(labels, target):
    """{"shape", "texture"} labels of corpus labels.

    Dense: maps of 0 (background), 1..10, 255 from class maps 0..100, 255.
    Classification: 0..9 from the main class 0..99.
    """
    labels = tf.cast(labels, tf.int32)
    if target == "classification":
        return {"shape": labels // len(TEXTURES), "texture": labels % len(TEXTURES)}
    valid = (labels > 0) & (labels != IGNORE_LABEL)
    index = labels - 1
    return {"shape": tf.where(valid, index // len(TEXTURES) + 1, labels),
            "texture": tf.where(valid, index % len(TEXTURES) + 1, labels)}


def pretrain_losses(outputs, labels, target):
    """{"loss": shape + texture cross entropy, "shape": ..., "texture": ...}."""
    factors = factor_labels(labels, target)
    losses = {}
    for name in HEADS:
        if target == "classification":
            losses[name] = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                factors[name], outputs[name], from_logits=True))
        else:
            losses[name] = masked_cross_entropy(outputs[name], factors[name])
    return {"loss": losses["shape"] + losses["texture"], **losses}


def predict_classes(outputs, target):
    """The predicted corpus classes (the labels' coding) from the two heads' logits.

    Dense: background where the shape head says background, else the pair of
    the two heads' best object classes. Classification: the pair, 0..99.
    """
    shape = tf.argmax(outputs["shape"], -1, output_type=tf.int32)
    if target == "classification":
        texture = tf.argmax(outputs["texture"], -1, output_type=tf.int32)
        return shape * len(TEXTURES) + texture
    texture = tf.argmax(outputs["texture"][..., 1:], -1, output_type=tf.int32)
    return tf.where(shape == 0, 0, (shape - 1) * len(TEXTURES) + texture + 1)
