"""The SVF paper's baseline: PFENet with FEM replaced by ASPP (SVF paper Sec. 4.1)."""

import keras

from svf_tf.heads.aspp_meta_head import aspp_meta_head
from svf_tf.heads.episode_features import episode_features
from svf_tf.heads.episode_inputs import episode_inputs
from svf_tf.heads.kshot_reduce import KShotReduce
from svf_tf.ops.align_corners_resize import AlignCornersResize


def build_baseline_model(backbone, shot=1, *, kshot_reduce="sum", train_down_query=False,
                         image_size=(None, None), name="baseline"):
    """The SVF baseline as the authors ran it (their `model/aspp.py`).

    BAM's meta learner without base learner and ensemble: query/support
    features, prototype and prior (`episode_features`), then
    init_merge -> ASPP -> res1 -> +res2 -> cls, and the logits resized
    (align_corners) to the input size. Trained with the main loss only
    (`losses.baseline_loss`).

    As-run quirks of `model/aspp.py`, reproduced by default:
    - `kshot_reduce="sum"`: the authors' k-shot weights are all ones, so the
      k priors and prototypes are summed (a 5-shot prior lies in [0, 5]).
      "mean" averages them as PFENet does.
    - `train_down_query=False`: the authors' optimizer omits down_query, so
      the query projection keeps its random initialisation; here its conv is
      non-trainable. True trains it, as BAM does.
    The authors use the torchvision dilation pattern (D2) for this model's
    ResNet-50 (`build_fsss_model` picks it for a backbone name).

    Args:
        backbone: functional backbone (`svf_tf.backbones.build_backbone`),
            e.g. with `finetune="svf"` or `"freeze"`.
        shot: K >= 1 supports per episode.
        kshot_reduce: "sum" (as run) or "mean".
        train_down_query: see above.
        image_size: (H, W) of the inputs, None for any (checked per call).
        name: model name.

    Returns:
        A functional `keras.Model` taking [query_image [B,H,W,3],
        support_images [B,K,H,W,3], support_masks [B,K,H,W]] (or a dict
        with those keys, e.g. a pipeline element) and returning
        {"logits": [B, H, W, 2]}.
    """
    if kshot_reduce not in ("sum", "mean"):
        raise ValueError(
            f"kshot_reduce={kshot_reduce!r} is not accepted for the baseline: use 'sum' (the "
            "SVF authors' code as run) or 'mean' (PFENet's averaging).")
    inputs = episode_inputs(image_size)
    features = episode_features(inputs, backbone, shot, train_down_query=train_down_query)
    prototype = KShotReduce(shot, kshot_reduce, name="kshot_prototype")(features.prototypes)
    prior = KShotReduce(shot, kshot_reduce, name="kshot_prior")(features.priors)
    logits = aspp_meta_head(features.query_feat, prototype, prior)
    logits = AlignCornersResize(name="upsample_logits")([logits, features.query_image])
    return keras.Model(inputs, {"logits": logits}, name=name)
