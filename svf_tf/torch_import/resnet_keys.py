"""PyTorch keys of the deep-stem ResNet-50 ("resnet50_v2") -> our backbone's variables.

Two spellings of the same network occur (BAM/PFENet `model/resnet.py`
`ResNet`, and the `layer0` Sequential their models build from it):

| PyTorch key                               | Keras variable                      |
|-------------------------------------------|-------------------------------------|
| conv1.weight (ImageNet resnet50_v2.pth)   | conv1/kernel                        |
| bn2.running_var                           | bn2/moving_variance                 |
| layer0.0/.3/.6.weight (*)                 | conv1/conv2/conv3 kernel            |
| layer0.1/.4/.7.*                          | bn1/bn2/bn3                         |
| layer3.0.conv2.weight                     | layer3_0_conv2/kernel               |
| layer1.0.downsample.0.weight              | layer1_0_downsample_0/kernel        |
| layer1.0.downsample.1.running_mean        | layer1_0_downsample_1/moving_mean   |
| fc.weight, fc.bias                        | skipped (ImageNet classifier)       |

(*) PSPNet, PFENet, BAM and the SVF code wrap the stem in `layer0`, a
Sequential of conv1, bn1, relu1, conv2, bn2, relu2, conv3, bn3, relu3, maxpool.

Dilation and stride are not stored in the weights, so one checkpoint fits
both dilation patterns ("all_blocks" D1 and "torchvision" D2).
"""

import re

from svf_tf.torch_import.placement import Skip, batch_norm_placement, conv_placement

# Index in the references' `layer0` Sequential -> deep-stem layer (ReLUs and
# the max-pool at 2, 5, 8, 9 have no parameters).
LAYER0_SEQUENTIAL = {0: "conv1", 1: "bn1", 3: "conv2", 4: "bn2", 6: "conv3", 7: "bn3"}

_STEM = re.compile(r"(conv[123]|bn[123])\.(\w+)")
_STEM_SEQUENTIAL = re.compile(r"layer0\.(\d+)\.(\w+)")
_BLOCK = re.compile(r"layer([1-4])\.(\d+)\.(conv[123]|bn[123]|downsample\.[01])\.(\w+)")
_CLASSIFIER = re.compile(r"fc\.(weight|bias)")


def _module_placement(keras_layer: str, param: str, torch_module: str):
    """A conv or BN placement, by the PyTorch module's name (bnN, downsample.1: BN)."""
    is_bn = torch_module.startswith("bn") or torch_module == "downsample.1"
    return (batch_norm_placement if is_bn else conv_placement)(keras_layer, param)


def resnet_deep_stem_placement(key: str):
    """Where a deep-stem ResNet-50 tensor goes in `build_backbone("resnet50", stem="deep")`.

    Args:
        key: a state dict key relative to the network (no `module.` prefix).

    Returns:
        A `Placement`, a `Skip` (the ImageNet classifier, BN counters) or None.
    """
    if match := _STEM.fullmatch(key):
        return _module_placement(match[1], match[2], match[1])
    if match := _STEM_SEQUENTIAL.fullmatch(key):
        layer = LAYER0_SEQUENTIAL.get(int(match[1]))
        return _module_placement(layer, match[2], layer) if layer else None
    if match := _BLOCK.fullmatch(key):
        stage, block, part, param = match.groups()
        return _module_placement(f"layer{stage}_{block}_{part.replace('.', '_')}", param, part)
    if _CLASSIFIER.fullmatch(key):
        return Skip("ImageNet classifier (fc); the backbone ends at layer4")
    return None
