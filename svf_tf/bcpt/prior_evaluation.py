"""The non-parametric evaluation of a backbone: PFENet's prior, thresholded (BCPT Table 2).

BCPT paper Sec. 3.2: "we take the output of the last layer of conv5_x in
ResNet-50 to generate the prior mask, and convert it to the segmentation
mask with the same threshold". No head is trained: the prior of PFENet
(`svf_tf.heads.prior_mask`, as the few-shot models compute it: support
layer4 = layer4(layer3 * mask), cosine similarity to the query's layer4,
max over support pixels, min-max normalised) is the foreground score, and a
query pixel is foreground where the prior, resized to the evaluation label,
exceeds the threshold (default 0.5: the paper gives no value). With K
shots the shots' priors are averaged first.

The prior becomes the two-channel logits the evaluation protocol takes,
[threshold, prior] (`prior_logits`): after the protocol's align-corners
resize to the original label, argmax picks foreground exactly where the
resized prior > threshold (ties: background). So the score is the
project's mIoU / FB-IoU on the saved test episodes at original resolution,
comparable with every trained model's.
"""

import keras
import tensorflow as tf

from svf_tf.backbones.backbone_split import split_backbone
from svf_tf.heads.episode_inputs import EpisodeInputs, episode_inputs
from svf_tf.heads.prior_mask import PriorMask
from svf_tf.ops.align_corners_resize import AlignCornersResize, resize_align_corners


def prior_logits(prior, threshold):
    """[..., 1] prior -> [..., 2] logits (threshold, prior): argmax is prior > threshold."""
    return tf.concat([tf.fill(tf.shape(prior), tf.cast(threshold, prior.dtype)), prior], -1)


@keras.saving.register_keras_serializable(package="svf_tf")
class ShotMean(keras.layers.Layer):
    """[B*K, h, w, C] episode-major -> [B, h, w, C]: the mean over each episode's K shots."""

    def __init__(self, shot, **kwargs):
        super().__init__(**kwargs)
        self.shot = shot

    def call(self, inputs):
        shape = tf.shape(inputs)
        grouped = tf.reshape(inputs, [-1, self.shot, shape[1], shape[2], shape[3]])
        return tf.reduce_mean(grouped, axis=1)

    def get_config(self):
        return {**super().get_config(), "shot": self.shot}


def build_prior_model(backbone, shot):
    """{query_image, support_images, support_masks} -> {"prior": [B, S, S, 1]} at the query size.

    Args:
        backbone: a backbone of `svf_tf.backbones.build_backbone` (frozen).
        shot: K.
    """
    inputs = episode_inputs()
    query, supports, foreground = EpisodeInputs(shot, name="episode_inputs")(inputs)
    trunk, layer4 = split_backbone(backbone)
    q4 = layer4(trunk(query)["layer3"])
    s3 = trunk(supports)["layer3"]
    mask3 = AlignCornersResize(name="support_mask_to_layer3")([foreground, s3])
    s4 = layer4(keras.layers.Multiply(name="mask_support_layer3")([s3, mask3]))
    priors = ShotMean(shot, name="shot_mean")(PriorMask(shot, name="prior_mask")(
        [q4, s4, foreground]))
    prior = AlignCornersResize(name="prior_to_image")([priors, query])
    return keras.Model(inputs, {"prior": prior}, name="prior_model")


def make_prior_predict_fn(model, threshold):
    """`fn(query_image, support_images, support_masks) -> logits [1, S, S, 2]` for the protocol."""
    @tf.function(reduce_retracing=True)
    def predict(query_image, support_images, support_masks):
        feed = {"query_image": query_image, "support_images": support_images,
                "support_masks": support_masks}
        prior = model(feed, training=False)["prior"]
        return prior_logits(resize_align_corners(prior, tf.shape(query_image)[1:3]), threshold)

    return predict
