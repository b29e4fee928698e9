"""`build_backbone`: the few-shot heads' feature extractor, by name."""

import keras

from svf_tf.backbones.apply_finetune import apply_finetune
from svf_tf.backbones.backbone_bn import check_backbone_bn
from svf_tf.backbones.resnet50_backbone import resnet50_backbone
from svf_tf.backbones.vgg16_backbone import vgg16_backbone
from svf_tf.config.finetune_spec import FinetuneSpec
from svf_tf.constants import BACKBONES, input_size_error

_OPTIONS = {"resnet50": ("dilation", "stem"), "vgg16": ("batch_norm",)}


def check_input_shape(input_shape):
    """Validates an (H, W, 3) input shape; returns it as a tuple.

    The heads compute their output size as (H - 1) / 8 * 8 + 1 and align
    feature maps with align_corners=True, so a known H or W must satisfy
    (size - 1) % 8 == 0 (473 -> 60x60 and 641 -> 81x81 layer2..layer4 for
    ResNet-50; BAM `train.py` asserts (size - 1) % 8 == 0 in `main`, and
    `model/BAM.py` `OneModel.forward` computes the output size so). None (any
    size) is allowed.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or shape[2] != 3:
        raise ValueError(
            f"input_shape={input_shape!r} is not accepted: give (height, width, 3), "
            "channels last, with None for a size known only at call time.")
    for size in shape[:2]:
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"input_shape={input_shape!r}: {size!r} is not a positive int.")
        error = input_size_error("size", size)
        if error:
            raise ValueError(f"input_shape={input_shape!r}: {error}")
    return shape


def build_backbone(name, weights=None, *, input_shape=(None, None, 3), finetune="freeze",
                   dilation=None, stem=None, batch_norm=None, bn_epsilon=None,
                   backbone_bn="frozen", model_name=None, partial_weights=False):
    """The five feature endpoints layer0..layer4 of a pretrained backbone.

    Rewrites `keras.applications.ResNet50` or `VGG16` layer by layer
    (dilation, ceil-mode pooling, deep stem, BatchNorm, all documented in
    `resnet50_backbone` / `vgg16_backbone`), loads the weights, then applies
    the fine-tuning setting: SVF layers and per-layer trainability. By
    default every BatchNorm always uses its running statistics, even under
    `training=True` (the `fix_bn` of BAM and the SVF authors' code);
    `backbone_bn="batch_stats"` gives PFENet's own training instead. Stages
    before the first trainable one end in a `StopGradient`, so
    back-propagation stops there (their BatchNorms still update their
    statistics with "batch_stats": the forward pass runs them).

    BatchNorm and fine-tuning. `backbone_bn` decides which statistics a BN
    normalises with; the fine-tuning setting decides only whether its gamma
    and beta train (`FinetuneSpec.train_bn`, modes "bn" and "full"):
    - "frozen" (`FrozenBatchNormalization`): running statistics in training
      and test, never updated. With train_bn, gamma/beta train on top of
      them (the SVF paper's Table 4 rows).
    - "batch_stats" (`TorchBatchNormalization`): batch statistics under
      `training=True`, running statistics updated with PyTorch's rule
      (momentum 0.1, unbiased variance), used under `training=False`.
      With finetune="freeze" this is PFENet's own training (PFENet
      `train.py` calls only `model.train()`; `model/PFENet.py` runs
      layer0..layer4 under `torch.no_grad()`). With train_bn ("bn",
      "full") it is ordinary PyTorch BN training, e.g. BAM's stage-1 PSPNet
      (BAM `train_base.py`, BN in train mode).

    Args:
        name: "resnet50" or "vgg16".
        weights: None (random), "imagenet" (Keras' ImageNet weights, fetched
            and cached by Keras under $KERAS_HOME/models, default
            ~/.keras/models; ResNet50 with stem="keras" and plain VGG16 only),
            or the path of a weights file (see `resolve_weights` and the
            per-backbone docstrings for which file fits which variant).
        input_shape: (H, W, 3); H and W None or with (size - 1) % 8 == 0.
        finetune: a mode string ("freeze", "svf", "part", "full", "bn") or a
            `FinetuneSpec` (stages, conv kinds, BN, SVF options). "svf" is the
            paper's default: every conv of layer0..layer4 decomposed, the
            singular values of layer2..layer4 trainable.
        dilation: ResNet-50 only: "all_blocks" (default; PFENet/BAM, D1),
            "torchvision" (the SVF baseline and PFENet in the SVF code, D2)
            or "none" (output stride 32).
        stem: ResNet-50 only: "keras" (default; Keras' 7x7 stem and weights)
            or "deep" (the references' deep stem, PyTorch layout and names).
        batch_norm: VGG16 only: True for VGG16-BN (default False).
        bn_epsilon: BatchNorm epsilon; default Keras' 1.001e-5 for Keras'
            ResNet50 and PyTorch's 1e-5 for the deep stem and VGG16-BN.
        backbone_bn: "frozen" (default) or "batch_stats", see above. Plain
            VGG16 has no BatchNorm and accepts only "frozen".
        model_name: name of the returned model; default "{name}_backbone".
            Give distinct names to two backbones in one model (BAM + SVF).
        partial_weights: accept a weights file that leaves some conv or
            BatchNorm layers unset, or holds layers this backbone lacks (they
            are listed in a warning); by default that is an error naming them
            (`svf_tf.weights.pretrained.load_weights_file`).

    Returns:
        A `keras.Model` mapping an image batch (B, H, W, 3) to a dict
        {"layer0": ..., "layer4": ...} of feature maps.

    Raises:
        ValueError: an unknown name, option or input size, or an unusable
            weights file. FileNotFoundError: a weights file that does not
            exist, or "imagenet" weights that are neither cached nor
            downloadable.

    Example:
    ```python
    from svf_tf.backbones import build_backbone
    backbone = build_backbone("resnet50", weights=None, input_shape=(473, 473, 3),
                              finetune="svf")
    {k: v.shape for k, v in backbone.output.items()}
    # layer2..layer4: (None, 60, 60, 512/1024/2048)
    ```
    """
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone name={name!r}: use one of {BACKBONES}.")
    given = {"dilation": dilation, "stem": stem, "batch_norm": batch_norm}
    wrong = sorted(k for k, v in given.items() if v is not None and k not in _OPTIONS[name])
    if wrong:
        raise ValueError(
            f"build_backbone({name!r}): option(s) {wrong} do not apply to {name}; its options "
            f"are {_OPTIONS[name]}.")
    if keras.config.image_data_format() != "channels_last":
        raise ValueError("build_backbone needs keras.config.image_data_format() == "
                         f"'channels_last'; it is {keras.config.image_data_format()!r}.")
    spec = FinetuneSpec.from_option(finetune)
    inputs = keras.Input(shape=check_input_shape(input_shape), name="image")
    common = dict(bn_epsilon=bn_epsilon, backbone_bn=check_backbone_bn(backbone_bn),
                  cut_before=spec.first_trainable_stage, name=model_name or f"{name}_backbone",
                  partial_weights=partial_weights)
    if name == "resnet50":
        model, stages = resnet50_backbone(inputs, weights, stem=stem or "keras",
                                          dilation=dilation or "all_blocks", **common)
    else:
        model, stages = vgg16_backbone(inputs, weights, batch_norm=bool(batch_norm), **common)
    return apply_finetune(model, spec, stages)
