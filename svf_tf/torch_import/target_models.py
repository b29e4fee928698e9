"""The Keras model a checkpoint is converted into, for each conversion target.

- resnet50_deep_stem: ImageNet `resnet50_v2.pth` (PSPNet/semseg release) ->
  `build_backbone("resnet50", stem="deep")`;
- vgg16_bn: ImageNet `vgg16_bn.pth` (torchvision) ->
  `build_backbone("vgg16", batch_norm=True)`;
- pspnet: BAM's stage-1 `initmodel/PSPNet/{dataset}/split{k}/{backbone}/best.pth`
  -> `build_pspnet_model(backbone, 1 + base classes)`;
- baseline: the SVF code's trained baseline (model/aspp.py) ->
  `build_fsss_model("baseline", backbone, shot)`;
- pfenet: PFENet's (or the SVF code's) trained PFENet ->
  `build_fsss_model("pfenet", backbone, shot)`;
- bam: BAM's trained model -> `build_fsss_model("bam", backbone, shot)`.

Models are built without SVF (`finetune="freeze"`): checkpoints hold plain
conv weights, and SVF decomposes them after loading (`build_backbone(...,
weights=file, finetune="svf")`).
"""

from svf_tf.backbones import build_backbone
from svf_tf.constants import BACKBONES
from svf_tf.heads.pspnet import COCO_BASE_CLASSES, PASCAL_BASE_CLASSES, build_pspnet_model
from svf_tf.models.build_model import build_fsss_model, default_backbone_options

BACKBONE_TARGETS = {"resnet50_deep_stem": "resnet50", "vgg16_bn": "vgg16"}
FSS_TARGETS = ("baseline", "pfenet", "bam")
MODEL_TARGETS = ("pspnet", *FSS_TARGETS)
TARGETS = (*BACKBONE_TARGETS, *MODEL_TARGETS)
DILATIONS = ("all_blocks", "torchvision")
# Base classes without background, per dataset (BAM `util/util.py`, `get_train_val_set`).
BASE_CLASSES = {"pascal": PASCAL_BASE_CLASSES, "coco": COCO_BASE_CLASSES}


def check_target(target, backbone=None) -> str:
    """Validates a target and returns its backbone name ("resnet50" or "vgg16")."""
    if target not in TARGETS:
        raise ValueError(f"target={target!r} is not accepted: use one of {TARGETS}.")
    if target in BACKBONE_TARGETS:
        implied = BACKBONE_TARGETS[target]
        if backbone not in (None, implied):
            raise ValueError(f"target={target!r} is the {implied} backbone; backbone={backbone!r} "
                             "contradicts it (leave it unset).")
        return implied
    if backbone not in BACKBONES:
        raise ValueError(
            f"target={target!r} needs backbone='resnet50' (deep-stem ResNet-50) or 'vgg16' "
            f"(VGG16-BN), the backbone the checkpoint was trained with; got {backbone!r}.")
    return backbone


def build_target_backbone(target, backbone=None, dilation=None):
    """The backbone of a target's Keras model, without SVF.

    Args:
        target: one of `TARGETS`.
        backbone: "resnet50" or "vgg16" (model targets).
        dilation: ResNet-50 only, "all_blocks" (D1) or "torchvision" (D2).
            The weights do not depend on it; it sets the model the weights
            are loaded into. Default: the method's published choice (D2 for
            the SVF baseline and PFENet, D1 otherwise; `build_fsss_model`).
    """
    name = check_target(target, backbone)
    method = target if target in FSS_TARGETS else "bam"  # BAM's stage 1 and ImageNet: D1
    options = default_backbone_options(name, method)
    if dilation is not None:
        if name != "resnet50":
            raise ValueError(f"dilation={dilation!r} applies to ResNet-50 only, not {name}.")
        if dilation not in DILATIONS:
            raise ValueError(f"dilation={dilation!r} is not accepted: use one of {DILATIONS}.")
        options["dilation"] = dilation
    return build_backbone(name, None, finetune="freeze", **options)


def build_target_model(target, *, backbone=None, dilation=None, dataset="pascal", shot=1,
                       head_options=None):
    """The Keras model a target's checkpoint is converted into.

    Args:
        target: one of `TARGETS`.
        backbone: "resnet50" or "vgg16" (model targets).
        dilation: see `build_target_backbone`.
        dataset: "pascal" or "coco": the base classes of the stage-1 PSPNet
            (1 + 15 or 1 + 60 outputs) and of BAM's base learner.
        shot: supports per episode. Only BAM's weights depend on it (its
            k-shot re-weighting exists for shot > 1 and has shot inputs).
        head_options: extra `build_fsss_model` options (e.g. PFENet's
            `pyramid_bins`); they do not change the weights.

    Returns:
        (model, backbone_model): the model, and the backbone inside it.
    """
    if dataset not in BASE_CLASSES:
        raise ValueError(f"dataset={dataset!r} is not accepted: use one of {sorted(BASE_CLASSES)}.")
    backbone_model = build_target_backbone(target, backbone, dilation)
    if target in BACKBONE_TARGETS:
        return backbone_model, backbone_model
    base_classes = BASE_CLASSES[dataset]
    if target == "pspnet":
        return build_pspnet_model(backbone_model, base_classes + 1), backbone_model
    options = dict(head_options or {})
    if target == "bam":
        options.setdefault("num_base_classes", base_classes)
    return build_fsss_model(target, backbone_model, shot, **options), backbone_model
