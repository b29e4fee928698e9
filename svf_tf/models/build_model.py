"""`build_fsss_model`: a few-shot segmentation model by method name."""

import keras

from svf_tf.backbones import build_backbone
from svf_tf.config.method_defaults import backbone_defaults, head_defaults
from svf_tf.heads.bam import build_bam_model
from svf_tf.heads.baseline import build_baseline_model
from svf_tf.heads.pfenet import build_pfenet_model

BUILDERS = {"baseline": build_baseline_model, "pfenet": build_pfenet_model,
            "bam": build_bam_model}
METHODS = tuple(BUILDERS)
HEAD_OPTIONS = {
    "baseline": ("kshot_reduce", "train_down_query"),
    "pfenet": ("pyramid_bins", "kshot_reduce", "train_down_query"),
    "bam": ("base_backbone", "base_learner", "num_base_classes"),
}



def default_backbone_options(name, method):
    """The references' backbone variant for a method (`build_backbone` arguments).

    Read from the one table of per-method defaults,
    `svf_tf.config.method_defaults` (which cites the references): ResNet-50
    with the deep stem (PSPNet's resnet50_v2, what the papers load) and the
    method's dilation pattern (the SVF authors' baseline and PFENet:
    torchvision's, layer3's first block undilated; BAM: every block
    dilated); VGG16-BN; the backbone's BatchNorm frozen. Override any of
    them through `build_fsss_model(backbone_options=...)`, e.g.
    {"stem": "keras"} for Keras' ImageNet weights.
    """
    if method not in BUILDERS:
        raise ValueError(f"method={method!r} is not accepted: use one of {METHODS}.")
    return backbone_defaults(method, name) if name in ("resnet50", "vgg16") else {}


def build_fsss_model(method, backbone, shot=1, *, weights=None, finetune=None,
                     backbone_options=None, image_size=(None, None), partial_weights=False,
                     **head_options):
    """A few-shot segmentation model: "baseline", "pfenet" or "bam" on a backbone.

    Args:
        method: "baseline" (SVF paper's ASPP baseline), "pfenet" or "bam".
        backbone: a backbone name ("resnet50", "vgg16"), built here with
            `svf_tf.backbones.build_backbone`, or a functional backbone model
            used as is.
        shot: K >= 1 supports per episode.
        weights: for a backbone name: None (random), "imagenet" or a weights
            file (BAM: the stage-1 PSPNet backbone). Must be None for a model.
        finetune: for a backbone name: a `build_backbone` fine-tuning mode
            ("freeze", "svf", ...) or `FinetuneSpec`; default "freeze". For
            BAM, when the backbone trains anything, a second, frozen backbone
            with the same weights feeds the base learner (SVF's "the base
            branch is not fine-tuned", SVF paper Sec. 4.1). With
            weights=None the two copies are independently random.
        backbone_options: extra `build_backbone` arguments, over
            `default_backbone_options` (deep-stem ResNet-50 with the method's
            dilation pattern, VGG16-BN), e.g. {"backbone_bn": "batch_stats"}
            for PFENet's own BatchNorm (batch statistics in training; default
            "frozen", the SVF authors' `fix_bn`). They apply to BAM's frozen
            base backbone too.
        image_size: (H, W) of the inputs, None for any size.
        partial_weights: for a backbone name: accept a weights file that sets
            only some backbone layers (`build_backbone`).
        **head_options: the builder's options: baseline `kshot_reduce`,
            `train_down_query`; pfenet `pyramid_bins`, `kshot_reduce`,
            `train_down_query`; bam `base_backbone`, `base_learner`,
            `num_base_classes`. Unset ones take the method's value from
            `svf_tf.config.method_defaults` (the published runs).

    Returns:
        A functional `keras.Model` (see `build_baseline_model`,
        `build_pfenet_model`, `build_bam_model`).

    Example:
    ```python
    model = build_fsss_model("baseline", "resnet50", shot=1, finetune="svf")
    ```
    """
    if method not in BUILDERS:
        raise ValueError(f"method={method!r} is not accepted: use one of {METHODS}.")
    unknown = sorted(set(head_options) - set(HEAD_OPTIONS[method]))
    if unknown:
        raise ValueError(
            f"build_fsss_model({method!r}): unknown option(s) {unknown}; {method} accepts "
            f"{list(HEAD_OPTIONS[method])}.")
    head_options = {**head_defaults(method), **head_options}
    if isinstance(backbone, str):
        options = {**default_backbone_options(backbone, method), **(backbone_options or {})}
        input_shape = (*image_size, 3)
        backbone_model = build_backbone(backbone, weights, input_shape=input_shape,
                                        finetune="freeze" if finetune is None else finetune,
                                        partial_weights=partial_weights, **options)
        trains = bool(backbone_model.trainable_variables)
        if method == "bam" and trains and "base_backbone" not in head_options:
            head_options["base_backbone"] = build_backbone(
                backbone, weights, input_shape=input_shape, finetune="freeze",
                model_name=f"{backbone}_base_backbone", partial_weights=partial_weights,
                **options)
    elif isinstance(backbone, keras.Model):
        given = {k: v for k, v in (("weights", weights), ("finetune", finetune),
                                   ("backbone_options", backbone_options)) if v is not None}
        if given:
            raise ValueError(
                f"build_fsss_model: {sorted(given)} apply to a backbone name; the backbone "
                f"model '{backbone.name}' is used as built. Pass them to build_backbone.")
        backbone_model = backbone
    else:
        raise ValueError(
            f"backbone={backbone!r} is not accepted: give 'resnet50', 'vgg16' or a backbone "
            "model from svf_tf.backbones.build_backbone.")
    return BUILDERS[method](backbone_model, shot, image_size=image_size, **head_options)
