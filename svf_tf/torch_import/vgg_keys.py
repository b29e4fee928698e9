"""PyTorch keys of VGG16-BN -> our VGG16-BN backbone's variables.

torchvision's `vgg16_bn.features` is one Sequential of conv, BN, ReLU
triples and max-pools (config "D"): conv k sits at index k, its BN at k + 1.
The k-th conv is Keras' k-th conv in block order (`get_vgg16_layer` in BAM
`model/PSPNet.py` splits `features` into layer0..layer4):

| PyTorch key (vgg16_bn.pth)  | whole-model key   | Keras variable          |
|-----------------------------|-------------------|-------------------------|
| features.0.weight / .bias   | layer0.0.*        | block1_conv1/kernel, bias |
| features.1.running_mean     | layer0.1.*        | block1_bn1/moving_mean  |
| features.7.weight           | layer1.0.weight   | block2_conv1/kernel     |
| features.40.weight          | layer4.6.weight   | block5_conv3/kernel     |
| classifier.*                | -                 | skipped (ImageNet classifier) |

In the whole models (PFENet, BAM, the SVF code) layer0..layer4 are the
Sequentials features[0:7], [7:14], [14:24], [24:34], [34:43], each
re-indexed from 0.
"""

import re

from svf_tf.torch_import.placement import Skip, batch_norm_placement, conv_placement

# torchvision's VGG config "D": channels of each conv, "M" for a max-pool.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")
# First `features` index of layer0..layer4, and the end of layer4 (no final pool).
STAGE_BOUNDS = (0, 7, 14, 24, 34, 43)


def _feature_modules():
    """{features index: (kind, Keras layer)} for every conv and BN of vgg16_bn."""
    modules, index, block, conv = {}, 0, 1, 1
    for entry in VGG16_CONFIG:
        if entry == "M":
            index, block, conv = index + 1, block + 1, 1
            continue
        modules[index] = ("conv", f"block{block}_conv{conv}")
        modules[index + 1] = ("bn", f"block{block}_bn{conv}")
        index, conv = index + 3, conv + 1  # conv, BN, ReLU
    return modules


FEATURE_MODULES = _feature_modules()

_FEATURES = re.compile(r"features\.(\d+)\.(\w+)")
_STAGE = re.compile(r"layer([0-4])\.(\d+)\.(\w+)")
_CLASSIFIER = re.compile(r"classifier\.\d+\.(weight|bias)")


def _feature_placement(index: int, param: str):
    kind, layer = FEATURE_MODULES.get(index, (None, None))
    if kind == "conv":
        return conv_placement(layer, param)
    if kind == "bn":
        return batch_norm_placement(layer, param)
    return None


def vgg16_bn_placement(key: str):
    """Where a VGG16-BN tensor goes in `build_backbone("vgg16", batch_norm=True)`.

    Args:
        key: a state dict key relative to the network (no `module.` prefix).

    Returns:
        A `Placement`, a `Skip` (the ImageNet classifier, BN counters) or None.
    """
    if match := _FEATURES.fullmatch(key):
        return _feature_placement(int(match[1]), match[2])
    if match := _STAGE.fullmatch(key):
        stage, offset = int(match[1]), int(match[2])
        index = STAGE_BOUNDS[stage] + offset
        if index >= STAGE_BOUNDS[stage + 1]:
            return None
        return _feature_placement(index, match[3])
    if _CLASSIFIER.fullmatch(key):
        return Skip("ImageNet classifier; the backbone ends at layer4 (features[42])")
    return None
