"""Shared pieces of the conversion tests: Keras backbones built once, episode inputs.

Keras backbones are built once per session and shared: several heads can
sit on one backbone model, and every test converts its own checkpoint into
the model before comparing, so sharing never mixes weights.
"""

import numpy as np

from svf_tf.torch_import.target_models import build_target_backbone

_BACKBONES = {}
# Small inputs keep full-size networks fast: 65 gives ResNet-50 layer2..4 at
# 9x9 and VGG16 layer3/4 at 5x5, and satisfies (size - 1) % 8 == 0.
IMAGE_SIZE = 65
ATOL = 1e-4


def keras_backbone(name, dilation=None):
    """`build_target_backbone` for ("resnet50_deep_stem" | "vgg16_bn", dilation), shared."""
    key = (name, dilation)
    if key not in _BACKBONES:
        _BACKBONES[key] = build_target_backbone(name, dilation=dilation)
    return _BACKBONES[key]


def episode(batch, shot, seed, size=IMAGE_SIZE):
    """Random images and masks (0 background, 1 foreground rectangle, 255 ignore stripe)."""
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(batch, 3, size, size)).astype(np.float32)
    supports = rng.normal(size=(batch, shot, 3, size, size)).astype(np.float32)
    masks = np.zeros((batch, shot, size, size), np.float32)
    for b in range(batch):
        for k in range(shot):
            top, left = rng.integers(0, size // 2, 2)
            height, width = rng.integers(size // 4, size // 2, 2)
            masks[b, k, top:top + height, left:left + width] = 1
            masks[b, k, :, rng.integers(0, size)] = 255
    return query, supports, masks


def keras_episode(query, supports, masks, class_slot=None):
    """The Keras models' input dict for NCHW numpy arrays."""
    inputs = {"query_image": query.transpose(0, 2, 3, 1),
              "support_images": supports.transpose(0, 1, 3, 4, 2),
              "support_masks": masks}
    if class_slot is not None:
        inputs["class_slot"] = np.asarray(class_slot, np.int32)
    return inputs


def max_error(actual, expected):
    return float(np.abs(np.asarray(actual) - np.asarray(expected)).max())

