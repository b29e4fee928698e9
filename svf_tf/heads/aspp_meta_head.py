"""The ASPP meta head of the SVF baseline and BAM's meta learner (BAM `model/BAM.py`)."""

import keras

from svf_tf.heads.aspp import ASPP
from svf_tf.heads.classifier_head import ClassifierHead
from svf_tf.ops.broadcast_like import BroadcastLike
from svf_tf.ops.initializers import torch_conv2d


def residual_refinement(x, res1_name, res2_name):
    """res1 (1x1 -> 256, ReLU) then + res2 (two 3x3 256 -> 256, ReLU), all bias-free."""
    channels = 256
    x = torch_conv2d(channels, 1, activation="relu", name=res1_name)(x)
    residual = torch_conv2d(channels, 3, activation="relu", name=f"{res2_name}_1")(x)
    residual = torch_conv2d(channels, 3, activation="relu", name=f"{res2_name}_2")(residual)
    return keras.layers.Add(name=f"{res2_name}_add")([x, residual])


def merge_query_support(query_feat, prototype, prior):
    """init_merge(concat[query_feat, tiled prototype, prior]): 1x1 513 -> 256 + ReLU, no bias."""
    tiled = BroadcastLike(name="tile_prototype")([prototype, query_feat])
    merged = keras.layers.Concatenate(name="query_prototype_prior")([query_feat, tiled, prior])
    return torch_conv2d(query_feat.shape[-1], 1, activation="relu", name="init_merge")(merged)


def aspp_meta_head(query_feat, prototype, prior):
    """Logits of the meta head: init_merge -> ASPP -> res1 -> +res2 -> cls_meta.

    Args:
        query_feat: [B, h, w, 256].
        prototype: [B, 1, 1, 256] (shots already combined).
        prior: [B, h, w, 1] (shots already combined).

    Returns:
        [B, h, w, 2] logits at the feature resolution.
    """
    x = merge_query_support(query_feat, prototype, prior)
    x = ASPP(x.shape[-1], name="aspp")(x)
    x = residual_refinement(x, "res1_meta", "res2_meta")
    return ClassifierHead(2, 256, 0.1, name="cls_meta")(x)
