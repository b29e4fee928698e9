"""PFENet: prior-guided feature enrichment (PFENet `model/PFENet.py`, `PFENet`)."""

import keras

from svf_tf.heads.aspp_meta_head import residual_refinement
from svf_tf.heads.classifier_head import ClassifierHead
from svf_tf.heads.episode_features import REDUCE_DIM, episode_features
from svf_tf.heads.episode_inputs import episode_inputs
from svf_tf.heads.fem import PFENET_BINS, FeatureEnrichment, check_pyramid_bins
from svf_tf.heads.kshot_reduce import KShotReduce
from svf_tf.ops.align_corners_resize import AlignCornersResize


def build_pfenet_model(backbone, shot=1, *, pyramid_bins=PFENET_BINS, kshot_reduce="mean",
                       train_down_query=True, image_size=(None, None), name="pfenet"):
    """PFENet's head on a backbone, as in the SVF authors' `model/pfenet.py`.

    Query/support features, prototype and prior (`episode_features`); the k
    priors and prototypes are averaged; the feature enrichment module
    (`FeatureEnrichment`) over `pyramid_bins`; then res1 -> +res2 -> cls, and
    all logits resized (align_corners) to the input size. Trained with the
    main loss plus `aux_weight` times the mean of the per-bin auxiliary
    losses (`losses.pfenet_loss`).

    Options (defaults = the SVF authors' runs):
    - `pyramid_bins=(60, 30, 15, 8)`: absolute bin sizes, which the SVF code
      hard-codes for Pascal and COCO alike (`OneModel.__init__`); floats in
      (0, 1] are fractions of the query feature size (PFENet's own COCO
      config is [1.0, 0.5, 0.25, 0.125]: int(81 * f) = 81, 40, 20, 10 cells
      at 641 px). The type decides: an int 1 is one cell, a float 1.0 the
      whole map (PFENet's `PFENet.forward` reads any bin <= 1.0 as a
      fraction).
    - `kshot_reduce="mean"` (PFENet); "sum" is the SVF baseline's rule.
    - `train_down_query=True` (PFENet trains it).
    The authors use the torchvision dilation pattern (D2) for this model's
    ResNet-50 (`build_fsss_model` picks it for a backbone name).

    PFENet's own training differs from the SVF authors' in its bins (above)
    and its backbone BatchNorm: pass a backbone built with
    `backbone_bn="batch_stats"` (`build_fsss_model(...,
    backbone_options={"backbone_bn": "batch_stats"})`). Each backbone BN then
    normalises the query batch and, in a second call, all B*K supports as one
    batch, updating its statistics once per call. PFENet's loop over shots
    normalises and updates per shot (B images at a time), so for K > 1 the
    supports' statistics and update count differ; for K = 1 they are the
    same two updates.

    Args:
        backbone: functional backbone (`svf_tf.backbones.build_backbone`).
        shot: K >= 1.
        pyramid_bins, kshot_reduce, train_down_query: see above.
        image_size: (H, W), None for any.
        name: model name.

    Returns:
        A functional `keras.Model` taking [query_image, support_images,
        support_masks] (or a dict with those keys) and returning
        {"logits": [B, H, W, 2], "aux_logits": [one [B, H, W, 2] per bin]}.
    """
    bins = check_pyramid_bins(pyramid_bins)
    if kshot_reduce not in ("sum", "mean"):
        raise ValueError(
            f"kshot_reduce={kshot_reduce!r} is not accepted for PFENet: use 'mean' (PFENet) "
            "or 'sum' (the SVF baseline's rule).")
    inputs = episode_inputs(image_size)
    features = episode_features(inputs, backbone, shot, train_down_query=train_down_query)
    prototype = KShotReduce(shot, kshot_reduce, name="kshot_prototype")(features.prototypes)
    prior = KShotReduce(shot, kshot_reduce, name="kshot_prior")(features.priors)
    merged, *aux = FeatureEnrichment(bins, REDUCE_DIM, name="fem")(
        [features.query_feat, prototype, prior])
    x = residual_refinement(merged, "res1", "res2")
    logits = ClassifierHead(2, REDUCE_DIM, 0.1, name="cls")(x)
    image = features.query_image
    logits = AlignCornersResize(name="upsample_logits")([logits, image])
    aux = [AlignCornersResize(name=f"upsample_aux_logits_{i}")([a, image])
           for i, a in enumerate(aux)]
    return keras.Model(inputs, {"logits": logits, "aux_logits": aux}, name=name)
