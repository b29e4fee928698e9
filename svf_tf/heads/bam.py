"""BAM: base and meta learners with a Gram-matrix ensemble (BAM `model/BAM.py`, `OneModel`)."""

import keras

from svf_tf.backbones import StopGradient
from svf_tf.backbones.backbone_split import check_backbone
from svf_tf.heads.aspp_meta_head import aspp_meta_head
from svf_tf.heads.bam_ensemble import BAMEnsemble
from svf_tf.heads.episode_features import episode_features
from svf_tf.heads.episode_inputs import episode_inputs
from svf_tf.heads.gram_adjustment import GramAdjustment
from svf_tf.heads.kshot_reduce import KShotReduce
from svf_tf.heads.kshot_weighting import KShotWeighting
from svf_tf.heads.pspnet import PASCAL_BASE_CLASSES, PSPNetHead
from svf_tf.ops.align_corners_resize import AlignCornersResize


def frozen_base_learner(base_learner, in_channels, num_base_classes):
    """A frozen copy of a stage-1 `PSPNetHead` (or a new one), named "learner_base".

    The copy has its own variables, so the stage-1 model it came from stays
    trainable and unchanged.
    """
    if base_learner is None:
        learner = PSPNetHead(in_channels, num_base_classes + 1, name="learner_base")
        learner.build((None, None, None, in_channels))
    else:
        if not isinstance(base_learner, PSPNetHead):
            raise ValueError(
                f"base_learner={base_learner!r} is not accepted: give the PSPNetHead of a "
                "stage-1 model (`pspnet.get_layer('pspnet_head')`) or None.")
        config = {**base_learner.get_config(), "name": "learner_base"}
        if config["in_channels"] != in_channels or \
                config["num_classes"] != num_base_classes + 1:
            raise ValueError(
                f"base_learner '{base_learner.name}' maps {config['in_channels']} channels to "
                f"{config['num_classes']} classes, but this BAM model needs {in_channels} "
                f"(the backbone's layer4) to 1 + num_base_classes = {num_base_classes + 1}.")
        learner = PSPNetHead.from_config(config)
        learner.build((None, None, None, in_channels))
        learner.set_weights(base_learner.get_weights())
    learner.trainable = False
    return learner


def build_bam_model(backbone, shot=1, *, base_backbone=None, base_learner=None,
                    num_base_classes=PASCAL_BASE_CLASSES, image_size=(None, None), name="bam"):
    """BAM on a backbone; with an SVF backbone, the SVF paper's BAM + SVF.

    Meta learner = the ASPP head of the baseline (`episode_features`, `aspp_meta_head`)
    with down_query trained, and the k shots combined with BAM's learned
    weights: the Gram-matrix distance between query and support layer2
    features (`GramAdjustment`), `KShotWeighting` (shot > 1), and a weighted
    sum of priors, prototypes and distances. Base learner = a frozen
    `PSPNetHead` on the query's layer4; its output is cut from the backward
    pass. `BAMEnsemble` merges them.

    Backbones (BAM `model/BAM.py` `OneModel.__init__`; SVF code `model/BAM.py`,
    `layer0p..layer4p`; "SVF does not finetuning base branch in BAM", SVF
    paper Sec. 4.1): BAM's backbone is the stage-1
    PSPNet backbone (dilation D1). Without SVF one backbone feeds both
    learners (`base_backbone=None`). With SVF pass the SVF backbone as
    `backbone` (meta learner and Gram factor) and an untouched frozen backbone
    with the same weights as `base_backbone` (base learner only), which is
    what `build_fsss_model("bam", name, finetune="svf")` does.

    Args:
        backbone: functional backbone for the meta learner.
        shot: K >= 1.
        base_backbone: functional backbone for the base learner. None uses
            `backbone`, which is allowed only for a backbone with nothing
            trainable (pass `base_backbone=backbone` to share a trainable one
            on purpose).
        base_learner: the trained `PSPNetHead` of stage 1
            (`build_pspnet_model(...).get_layer("pspnet_head")`); its weights
            are copied. None makes a randomly initialised one (tests, or
            weights loaded later).
        num_base_classes: base classes without background (15 Pascal, 60 COCO).
        image_size: (H, W), None for any.
        name: model name.

    Returns:
        A functional `keras.Model` taking [query_image, support_images,
        support_masks, class_slot] (or a dict with those keys; class_slot
        [B] int32 is used only in training) and returning
        {"logits": final [B,H,W,2], "meta_logits": [B,H,W,2],
        "base_logits": [B,H,W,1+num_base_classes]}, all resized
        (align_corners) to the input size.
    """
    check_backbone(backbone)
    if base_backbone is None and backbone.trainable_variables:
        raise ValueError(
            f"build_bam_model: backbone '{backbone.name}' has trainable variables (e.g. "
            f"'{backbone.trainable_variables[0].path}'), so it cannot also feed BAM's frozen "
            "base learner, which must see the untouched stage-1 features. Pass "
            "base_backbone=<a frozen backbone with the same weights> (build_fsss_model does "
            "this for a backbone name), or base_backbone=backbone to share it deliberately.")
    if base_backbone is not None:
        check_backbone(base_backbone)
    inputs = episode_inputs(image_size, with_class_slot=True)
    features = episode_features(inputs, backbone, shot, train_down_query=True)

    distances = GramAdjustment(shot, name="gram_distance")(
        [features.query_layer2, features.support_layer2])
    weights = KShotWeighting(shot, name="kshot_rw")(distances)
    est_val = KShotReduce(shot, "weighted", name="kshot_est_val")([distances, weights])
    prototype = KShotReduce(shot, "weighted", name="kshot_prototype")(
        [features.prototypes, weights])
    prior = KShotReduce(shot, "weighted", name="kshot_prior")([features.priors, weights])
    meta_logits = aspp_meta_head(features.query_feat, prototype, prior)

    if base_backbone is None or base_backbone is backbone:
        query_layer4 = features.query_layer4
    else:
        query_layer4 = base_backbone(features.query_image)["layer4"]
    learner = frozen_base_learner(base_learner, query_layer4.shape[-1], num_base_classes)
    # Nothing in the base branch trains (the references run it under no_grad).
    base_logits = StopGradient(name="base_stop_gradient")(learner(query_layer4))
    base_on_meta_grid = AlignCornersResize(name="base_to_meta_grid")([base_logits, meta_logits])
    final = BAMEnsemble(num_base_classes, name="ensemble")(
        [meta_logits, base_on_meta_grid, est_val, inputs[3]])

    image = features.query_image
    outputs = {
        "logits": AlignCornersResize(name="upsample_logits")([final, image]),
        "meta_logits": AlignCornersResize(name="upsample_meta_logits")([meta_logits, image]),
        "base_logits": AlignCornersResize(name="upsample_base_logits")([base_logits, image]),
    }
    return keras.Model(inputs, outputs, name=name)
