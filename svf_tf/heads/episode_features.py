"""The part shared by the baseline, PFENet and BAM's meta learner (PFENet `PFENet.forward`)."""

import dataclasses

import keras

from svf_tf.backbones.backbone_split import split_backbone
from svf_tf.heads.episode_inputs import EpisodeInputs
from svf_tf.heads.prior_mask import PriorMask
from svf_tf.ops.align_corners_resize import AlignCornersResize
from svf_tf.ops.initializers import torch_conv2d
from svf_tf.ops.masked_average_pooling import MaskedAveragePooling

REDUCE_DIM = 256
# Dropout2d after down_query/down_supp (`nn.Dropout2d(p=0.5)` in PFENet/BAM `__init__`).
FEATURE_DROPOUT = 0.5


@dataclasses.dataclass
class EpisodeFeatures:
    """Symbolic tensors of one episode batch (B episodes, K shots).

    Per-shot tensors are episode-major [B*K, ...] (row b*K + k is shot k of
    episode b); reduce them with `KShotReduce`.

    Attributes:
        query_image: [B, H, W, 3] (validated input).
        query_feat: down_query(concat[q3, q2]), [B, h, w, 256].
        prototypes: per-shot masked average of down_supp(concat[s3, s2]),
            [B*K, 1, 1, 256].
        priors: per-shot prior masks at the query layer3 size, [B*K, h, w, 1].
        query_layer2 / support_layer2: layer2 features at layer3's size
            (BAM's Gram factor), [B, h, w, C2] / [B*K, h, w, C2].
        query_layer4: [B, h4, w4, C4] (BAM's base learner without SVF).
    """

    query_image: keras.KerasTensor
    query_feat: keras.KerasTensor
    prototypes: keras.KerasTensor
    priors: keras.KerasTensor
    query_layer2: keras.KerasTensor
    support_layer2: keras.KerasTensor
    query_layer4: keras.KerasTensor


def feature_projection(fea_dim, name, trainable=True):
    """down_query / down_supp: 1x1 conv (no bias) + ReLU, then Dropout2d(0.5)."""
    conv = torch_conv2d(REDUCE_DIM, 1, fea_dim, activation="relu", trainable=trainable,
                        name=name)
    dropout = keras.layers.SpatialDropout2D(FEATURE_DROPOUT, name=f"{name}_dropout")
    return lambda x: dropout(conv(x))


def episode_features(inputs, backbone, shot, *, train_down_query=True):
    """Wires the first four steps of PFENet's `PFENet.forward` on a backbone.

    1. Query features q2, q3, q4; `query_feat = down_query(concat[q3, q2])`.
    2. Support s2, s3 of all B*K supports in one backbone call; the
       foreground mask resized (bilinear, align_corners: a soft mask) to
       layer3's size; s4 = layer4(s3 * mask).
    3. Prototype: masked average of down_supp(concat[s3, s2]).
    4. Prior from q4 and the masked s4 (`PriorMask`), resized to layer3's size.
    For VGG, layer2 is first resized to layer3's size (for ResNet-50 the sizes
    are equal and the resize is skipped or the identity).

    Args:
        inputs: [query_image, support_images, support_masks] `keras.Input`s.
        backbone: functional backbone image -> {"layer2", "layer3", "layer4", ...}.
        shot: K.
        train_down_query: whether down_query trains. The SVF authors'
            baseline leaves it out of the optimizer, so it keeps its random
            initialisation (SVF code `model/aspp.py`, `OneModel.get_optim`).

    Returns:
        `EpisodeFeatures`.
    """
    query, supports, foreground = EpisodeInputs(shot, name="episode_inputs")(inputs[:3])
    trunk, layer4 = split_backbone(backbone)
    query_levels, support_levels = trunk(query), trunk(supports)
    q2, q3 = query_levels["layer2"], query_levels["layer3"]
    s2, s3 = support_levels["layer2"], support_levels["layer3"]
    q4 = layer4(q3)
    mask3 = AlignCornersResize(name="support_mask_to_layer3")([foreground, s3])
    s4 = layer4(keras.layers.Multiply(name="mask_support_layer3")([s3, mask3]))
    q2 = AlignCornersResize(name="query_layer2_to_layer3")([q2, q3])
    s2 = AlignCornersResize(name="support_layer2_to_layer3")([s2, s3])

    fea_dim = q3.shape[-1] + q2.shape[-1]
    down_query = feature_projection(fea_dim, "down_query", trainable=train_down_query)
    down_supp = feature_projection(fea_dim, "down_supp")
    query_feat = down_query(keras.layers.Concatenate(name="query_layer3_layer2")([q3, q2]))
    support_feat = down_supp(keras.layers.Concatenate(name="support_layer3_layer2")([s3, s2]))
    prototypes = MaskedAveragePooling(name="support_prototypes")([support_feat, mask3])
    priors = PriorMask(shot, name="prior_mask")([q4, s4, foreground])
    priors = AlignCornersResize(name="prior_to_layer3")([priors, query_feat])
    return EpisodeFeatures(query_image=query, query_feat=query_feat, prototypes=prototypes,
                           priors=priors, query_layer2=q2, support_layer2=s2, query_layer4=q4)
