"""PyTorch keys of trained few-shot models -> `build_fsss_model` ("baseline", "pfenet", "bam").

The three references share `layer0..4` (the backbone, `resnet_keys` /
`vgg_keys`) and `down_query.0` / `down_supp.0` (1x1 convs; index 1 is the
ReLU, 2 the Dropout2d). Conv + ReLU Sequentials hold their conv at index 0;
two-conv residual blocks at 0 and 2; classifiers [3x3 conv, ReLU, Dropout2d,
1x1 conv] at 0 and 3.

Meta learner of the SVF baseline (SVF code `model/aspp.py`, `OneModel`) and BAM:

| PyTorch key                          | Keras variable                            |
|--------------------------------------|-------------------------------------------|
| init_merge.0.weight                  | init_merge/kernel                         |
| ASPP_meta.layer6_{j}.0.weight/bias   | aspp/ASPP_BRANCHES[j]/kernel, bias        |
| res1_meta.0.weight                   | res1_meta/kernel                          |
| res2_meta.0/.2.weight                | res2_meta_1/kernel, res2_meta_2/kernel    |
| cls_meta.0.weight                    | cls_meta/conv/kernel                      |
| cls_meta.3.weight/bias               | cls_meta/classifier/kernel, bias          |

ASPP_BRANCHES = (global_conv, conv_1x1, conv_3x3_rate6, conv_3x3_rate12,
conv_3x3_rate18), the reference's concatenation order.

BAM only: `learner_base.*` (`pspnet_keys`), `gram_merge.weight` and
`cls_merge.weight` ((1, 2, 1, 1) -> ensemble/gram_merge, ensemble/cls_merge
(2,)), `kshot_rw.0/.2.weight/bias` (shot > 1; 1x1 convs on [B, K, 1, 1] ->
kshot_rw/kshot_rw_1, kshot_rw/kshot_rw_2 Dense). The SVF baseline builds
`kshot_rw` for shot > 1 but never uses it (its shot weights are all ones),
so it is skipped. The SVF code's BAM (`model/BAM.py`, `OneModel.__init__`) also registers
the stage-1 backbone as `layer0p..layer4p`, the copy that feeds the base
learner: without SVF these are the same modules as layer0..4 (checked equal
and skipped); after SVF training layer0..4 hold the tuned (merged) weights
and layer0p..4p the untouched ones, which a one-backbone Keras BAM cannot
hold, so they are reported as unplaced with a hint.

PFENet (PFENet `model/PFENet.py`, `PFENet`; the same keys in the SVF code's
`model/pfenet.py`, `OneModel`), bin i:

| PyTorch key                          | Keras variable                            |
|--------------------------------------|-------------------------------------------|
| init_merge.{i}.0.weight              | fem/init_merge_{i}/kernel                 |
| alpha_conv.{i}.0.weight              | fem/alpha_conv_{i}/kernel (i < bins - 1)  |
| beta_conv.{i}.0/.2.weight            | fem/beta_conv_{i}_0, fem/beta_conv_{i}_1 kernel |
| inner_cls.{i}.0.weight               | fem/inner_cls_{i}/conv/kernel             |
| inner_cls.{i}.3.weight/bias          | fem/inner_cls_{i}/classifier/kernel, bias |
| res1.0.weight                        | res1/kernel                               |
| res2.0/.2.weight                     | res2_1/kernel, res2_2/kernel              |
| cls.0.weight, cls.3.weight/bias      | cls/conv/kernel, cls/classifier/*         |
"""

import re

from svf_tf.heads.aspp import ASPP_RATES
from svf_tf.torch_import.layouts import CONV1X1_AS_DENSE, MERGE_WEIGHTS, VECTOR
from svf_tf.torch_import.placement import Alias, Placement, Skip, conv_placement
from svf_tf.torch_import.pspnet_keys import bam_base_learner_placement

# ASPP_meta.layer6_{j}: the branches in the reference's concatenation order.
ASPP_BRANCHES = ("global_conv", "conv_1x1", *(f"conv_3x3_rate{rate}" for rate in ASPP_RATES))

_CONV_SEQUENTIAL = re.compile(r"(down_query|down_supp|init_merge|res1_meta|res1)\.0\.(\w+)")
_RESIDUAL = re.compile(r"(res2_meta|res2)\.([02])\.(\w+)")
_CLASSIFIER = re.compile(r"(cls_meta|cls)\.([03])\.(\w+)")
_ASPP = re.compile(r"ASPP_meta\.layer6_(\d+)\.0\.(\w+)")
_PFENET_BIN = re.compile(r"(init_merge|alpha_conv)\.(\d+)\.0\.(\w+)")
_BETA = re.compile(r"beta_conv\.(\d+)\.([02])\.(\w+)")
_INNER_CLS = re.compile(r"inner_cls\.(\d+)\.([03])\.(\w+)")
_MERGE = re.compile(r"(gram_merge|cls_merge)\.weight")
_KSHOT = re.compile(r"kshot_rw\.([02])\.(weight|bias)")
# SVF code's BAM: layer{i}p = the untouched stage-1 backbone feeding the base learner.
_BASE_BACKBONE = re.compile(r"layer([0-4])p\.(.+)")
BASE_BACKBONE_HINT = (
    "layer{i}p is BAM+SVF's untouched stage-1 copy that feeds the base learner, and layer{i} "
    "the SVF-tuned one; the Keras BAM converted into has one backbone. Load the stage-1 "
    "backbone separately (convert best.pth with --target=pspnet --backbone_output, then "
    "build_fsss_model('bam', ..., base_backbone=...)) and pass --allow_unplaced here")


def _classifier_placement(keras_head: str, index: str, param: str):
    return conv_placement(f"{keras_head}/{'conv' if index == '0' else 'classifier'}", param)


def _shared_placement(key: str, backbone_placement):
    """Backbone, down_query/down_supp, and the single-conv Sequentials of all three heads."""
    if re.match(r"layer[0-4]\.", key):
        return backbone_placement(key)
    if match := _CONV_SEQUENTIAL.fullmatch(key):
        return conv_placement(match[1], match[2])
    if match := _RESIDUAL.fullmatch(key):
        return conv_placement(f"{match[1]}_{1 if match[2] == '0' else 2}", match[3])
    if match := _CLASSIFIER.fullmatch(key):
        return _classifier_placement(match[1], match[2], match[3])
    return None


def _aspp_placement(key: str):
    match = _ASPP.fullmatch(key)
    if not match or int(match[1]) >= len(ASPP_BRANCHES):
        return None
    return conv_placement(f"aspp/{ASPP_BRANCHES[int(match[1])]}", match[2])


def baseline_placement(key: str, backbone_placement):
    """Where a tensor of the SVF baseline (SVF code `model/aspp.py`) goes in the Keras baseline."""
    if key.startswith("kshot_rw."):
        return Skip("built by the SVF baseline for shot > 1 but unused: its shot weights are "
                    "all ones (SVF code model/aspp.py, OneModel.forward)")
    if key.startswith("ASPP_meta."):
        return _aspp_placement(key)
    return _shared_placement(key, backbone_placement)


def bam_placement(key: str, backbone_placement):
    """Where a tensor of a trained BAM model (BAM `model/BAM.py`) goes in the Keras BAM."""
    if key.startswith("learner_base."):
        return bam_base_learner_placement(key)
    if match := _BASE_BACKBONE.fullmatch(key):
        return Alias(f"layer{match[1]}.{match[2]}", BASE_BACKBONE_HINT.format(i=match[1]))
    if key.startswith("ASPP_meta."):
        return _aspp_placement(key)
    if match := _MERGE.fullmatch(key):
        return Placement(f"ensemble/{match[1]}", MERGE_WEIGHTS)
    if match := _KSHOT.fullmatch(key):
        layer = f"kshot_rw/kshot_rw_{1 if match[1] == '0' else 2}"
        if match[2] == "weight":
            return Placement(f"{layer}/kernel", CONV1X1_AS_DENSE)
        return Placement(f"{layer}/bias", VECTOR)
    return _shared_placement(key, backbone_placement)


def pfenet_placement(key: str, backbone_placement):
    """Where a tensor of a trained PFENet (PFENet's or the SVF code's) goes in the Keras PFENet.

    PFENet's init_merge is a list with one Sequential per bin, so
    "init_merge.0.weight" is bin 0's (fem/init_merge_0), not the meta
    learner's single init_merge.
    """
    if match := _PFENET_BIN.fullmatch(key):
        return conv_placement(f"fem/{match[1]}_{match[2]}", match[3])
    if match := _BETA.fullmatch(key):
        return conv_placement(f"fem/beta_conv_{match[1]}_{0 if match[2] == '0' else 1}",
                              match[3])
    if match := _INNER_CLS.fullmatch(key):
        return _classifier_placement(f"fem/inner_cls_{match[1]}", match[2], match[3])
    return _shared_placement(key, backbone_placement)
