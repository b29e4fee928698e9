"""PyTorch keys of BAM's stage-1 PSPNet (backbone + PPM + cls) -> `build_pspnet_model`.

BAM's `best.pth` (`initmodel/PSPNet/{dataset}/split{k}/{vgg|resnet50}/best.pth`,
written by `train_base.py`, loaded in `model/BAM.py` `OneModel.__init__`)
holds `{"state_dict": {"module.<key>": tensor}}` with:

| PyTorch key                           | Keras variable                               |
|---------------------------------------|----------------------------------------------|
| layer0.* .. layer4.*                  | the backbone (`resnet_keys`, `vgg_keys`)     |
| encoder.{s}.*                         | skipped: same modules as layer{s}.* (*)      |
| ppm.features.{i}.1.weight             | pspnet_head/ppm/conv_bin{b}/kernel, b = (1, 2, 3, 6)[i] |
| ppm.features.{i}.2.*                  | pspnet_head/ppm/bn_bin{b}                    |
| cls.0.weight                          | pspnet_head/cls/conv/kernel (3x3, no bias)   |
| cls.1.*                               | pspnet_head/cls/bn                           |
| cls.4.weight, cls.4.bias              | pspnet_head/cls/classifier/kernel, bias      |

(*) The reference also registers layer0..4 inside an `encoder` Sequential,
so its state dict holds every backbone tensor twice; the copies are checked
to be equal and skipped.

In a trained BAM model the same head is `learner_base.0.*` (= ppm) and
`learner_base.1.*` (= cls), placed under the Keras layer `learner_base`.
"""

import re

from svf_tf.heads.ppm import PPM_BINS
from svf_tf.torch_import.placement import Alias, batch_norm_placement, conv_placement

# Keras layer name of the head in `build_pspnet_model` and in the BAM model.
PSPNET_HEAD = "pspnet_head"
BAM_BASE_LEARNER = "learner_base"

_PPM = re.compile(r"features\.(\d+)\.([12])\.(\w+)")
# The reference's cls Sequential: conv(0), BN(1), ReLU(2), Dropout2d(3), conv(4).
_CLS = re.compile(r"([014])\.(\w+)")
_ENCODER = re.compile(r"encoder\.([0-4])\.(.+)")


def ppm_placement(key: str, keras_head: str):
    """A key of the reference PPM (relative to it, e.g. "features.0.1.weight")."""
    match = _PPM.fullmatch(key)
    if not match or int(match[1]) >= len(PPM_BINS):
        return None
    pyramid_bin, part, param = PPM_BINS[int(match[1])], match[2], match[3]
    if part == "1":
        return conv_placement(f"{keras_head}/ppm/conv_bin{pyramid_bin}", param)
    return batch_norm_placement(f"{keras_head}/ppm/bn_bin{pyramid_bin}", param)


def pspnet_cls_placement(key: str, keras_head: str):
    """A key of the reference PSPNet classifier (relative to it, e.g. "0.weight")."""
    match = _CLS.fullmatch(key)
    if not match:
        return None
    index, param = match.groups()
    if index == "1":
        return batch_norm_placement(f"{keras_head}/cls/bn", param)
    return conv_placement(f"{keras_head}/cls/{'conv' if index == '0' else 'classifier'}", param)


def pspnet_head_placement(key: str, keras_head: str = PSPNET_HEAD):
    """A `ppm.*` or `cls.*` key of the stage-1 PSPNet -> the `PSPNetHead` named `keras_head`."""
    if key.startswith("ppm."):
        return ppm_placement(key[len("ppm."):], keras_head)
    if key.startswith("cls."):
        return pspnet_cls_placement(key[len("cls."):], keras_head)
    return None


def bam_base_learner_placement(key: str):
    """A `learner_base.{0,1}.*` key of a trained BAM model -> the Keras `learner_base`."""
    if key.startswith("learner_base.0."):
        return ppm_placement(key[len("learner_base.0."):], BAM_BASE_LEARNER)
    if key.startswith("learner_base.1."):
        return pspnet_cls_placement(key[len("learner_base.1."):], BAM_BASE_LEARNER)
    return None


def pspnet_placement(key: str, backbone_placement):
    """Where a stage-1 PSPNet tensor goes in `build_pspnet_model`.

    Args:
        key: a state dict key (no `module.` prefix).
        backbone_placement: the backbone's key map
            (`resnet_deep_stem_placement` or `vgg16_bn_placement`).
    """
    if re.match(r"layer[0-4]\.", key):
        return backbone_placement(key)
    if match := _ENCODER.fullmatch(key):
        return Alias(f"layer{match[1]}.{match[2]}")
    return pspnet_head_placement(key)
