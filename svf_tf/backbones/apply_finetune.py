"""Mapping a `FinetuneSpec` onto a backbone: SVF layers and per-layer trainability."""

import keras

from svf_tf.config.finetune_spec import FinetuneSpec
from svf_tf.layers import SVFConv2D
from svf_tf.surgery import apply_svf


def conv_kind(layer) -> str:
    """A conv's kind: "1x1", or "3x3" for any larger kernel (the reference resolver's rule)."""
    return "1x1" if tuple(layer.kernel_size) == (1, 1) else "3x3"


def apply_finetune(model, spec: FinetuneSpec, stages: dict):
    """Decomposes and (un)freezes the layers of a backbone as `spec` says.

    With mode "svf" the convs of `spec.svf_stages` are replaced by SVF layers
    (`svf_tf.apply_svf`, after dilation and weights are final, as the SVF
    code's `model/aspp.py` `OneModel.__init__` calls `svf.resolver` after
    building and loading the backbone); every other layer is shared with
    `model`. `spec.svf_compute` is the forward form of the SVF layers that
    train; decomposed layers that train nothing always run the kernel form
    (one convolution, same numbers). Then each conv is trainable iff
    `spec.trains_conv` (for an SVF layer this trains only its
    `svf_factors`), each BatchNorm iff `spec.trains_bn` (gamma/beta only:
    which statistics it normalises with is the layer's class, set by
    `build_backbone(backbone_bn=...)`).

    Args:
        model: a functional backbone from `resnet50_backbone`/`vgg16_backbone`.
        spec: the fine-tuning setting.
        stages: {layer name: stage} for the backbone's layers.

    Returns:
        The model to use: `model` itself, or a new model for mode "svf".

    Raises:
        ValueError: if a mode other than "freeze" leaves nothing trainable.
    """
    if spec.mode == "svf":
        # The one place where the fine-tuning settings (svf_factors, svf_parametrization,
        # svf_rank_multiple, svf_compute; svf_tf/config/finetune.py) take the SVF layers'
        # public names (trainable_factors, parametrization, rank_multiple, compute).
        model = apply_svf(
            model, filters=lambda layer: spec.decomposes(stages[layer.name]),
            trainable_factors=spec.svf_factors, parametrization=spec.svf_parametrization,
            rank_multiple=spec.svf_rank_multiple, compute=spec.svf_compute)
    for layer in model.layers:
        if layer.name not in stages:
            continue
        stage = stages[layer.name]
        if isinstance(layer, keras.layers.Conv2D):
            layer.trainable = spec.trains_conv(stage, conv_kind(layer))
            if isinstance(layer, SVFConv2D) and not layer.trainable:
                # Decomposed but untrained (layer0/1 in the paper's setting): the
                # kernel form is one convolution with the same numbers, where the
                # factored form would add a 1x1 convolution at high resolution.
                layer.compute = "kernel"
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = spec.trains_bn(stage)
        elif layer.weights:
            raise ValueError(f"internal: no fine-tuning rule for {type(layer).__name__} "
                             f"'{layer.name}'")
    if spec.mode != "freeze" and not model.trainable_variables:
        raise ValueError(
            f"finetune={spec!r} selects no parameter of {model.name} (e.g. 1x1 convs in "
            "VGG16, which has none, or BN in a network without BatchNorm); use "
            "mode='freeze' for a frozen backbone.")
    return model
