"""Splitting a backbone at layer3, so supports can be masked before layer4."""

import keras
from keras.src.models.functional import Functional

REQUIRED_FEATURES = ("layer2", "layer3", "layer4")


def check_backbone(backbone):
    """Raises ValueError unless `backbone` is a functional model image -> {"layer2".."layer4"}.

    The models need a functional (graph) backbone from
    `svf_tf.backbones.build_backbone`: one input [B, H, W, 3] and a dict of
    4-D feature maps with at least "layer2", "layer3" and "layer4".
    """
    if not isinstance(backbone, Functional):
        raise ValueError(
            f"backbone={backbone!r} is not accepted: give a functional keras.Model such as "
            "svf_tf.backbones.build_backbone('resnet50', weights=None), or a backbone name.")
    outputs = backbone.output
    missing = [k for k in REQUIRED_FEATURES if not isinstance(outputs, dict) or k not in outputs]
    if missing or len(backbone.inputs) != 1:
        raise ValueError(
            f"backbone '{backbone.name}' must map one image input to a dict with keys "
            f"{REQUIRED_FEATURES}; it has {len(backbone.inputs)} input(s) and outputs "
            f"{sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__}.")
    if backbone.inputs[0].shape[-1] != 3:
        raise ValueError(
            f"backbone '{backbone.name}' takes input shape {backbone.inputs[0].shape}; the "
            "few-shot models need RGB images [B, H, W, 3].")
    bad = {k: outputs[k].shape for k in REQUIRED_FEATURES if len(outputs[k].shape) != 4}
    if bad:
        raise ValueError(f"backbone '{backbone.name}': features {bad} are not [B, H, W, C].")


def split_backbone(backbone):
    """(trunk, layer4) sub-models of a backbone, sharing its layers and weights.

    The support branch runs layer4 on the *masked* layer3 features
    (s4 = layer4(s3 * mask), PFENet `model/PFENet.py`, `PFENet.forward`), which a backbone
    mapping an image to all five features cannot do. Both parts are views of
    the same graph: `trunk` maps the image to {"layer2", "layer3"}, `layer4`
    maps layer3 features to layer4 features. A `StopGradient` the backbone
    put on layer3 stays at the end of the trunk.

    Args:
        backbone: a model accepted by `check_backbone`.

    Returns:
        (trunk, layer4) functional models, named "{backbone}_trunk" and
        "{backbone}_layer4".

    Raises:
        ValueError: if layer4 depends on more than layer3.
    """
    check_backbone(backbone)
    outputs = backbone.output
    trunk = keras.Model(backbone.inputs, {"layer2": outputs["layer2"], "layer3": outputs["layer3"]},
                        name=f"{backbone.name}_trunk")
    try:
        layer4 = keras.Model(outputs["layer3"], outputs["layer4"], name=f"{backbone.name}_layer4")
    except ValueError as error:
        raise ValueError(
            f"backbone '{backbone.name}': layer4 must be computed from layer3 alone (the "
            f"support branch feeds it masked layer3 features); Keras said: {error}") from None
    return trunk, layer4
