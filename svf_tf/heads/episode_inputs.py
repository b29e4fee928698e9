"""The models' inputs: an episode batch, validated at call time."""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.constants import IGNORE_LABEL, is_input_size

MASK_VALUES = (0, 1, IGNORE_LABEL)
# Input names = the data pipeline's element keys, so `model(batch)` works on
# a pipeline element (extra keys such as "query_mask" are ignored by Keras).
QUERY_IMAGE = "query_image"
SUPPORT_IMAGES = "support_images"
SUPPORT_MASKS = "support_masks"
CLASS_SLOT = "class_slot"


def check_image_size(size):
    """Whether a spatial size suits the heads: None (unknown) or (size - 1) % 8 == 0."""
    return size is None or is_input_size(size)


def episode_inputs(image_size=(None, None), *, with_class_slot=False):
    """The `keras.Input`s of a few-shot model, named like the pipeline's keys.

    K (shots) is left unknown here and checked against the model's shot by
    `EpisodeInputs`, which gives a clear error instead of Keras' generic one.

    Args:
        image_size: (H, W), None for sizes known only at call time. Known
            sizes must satisfy (size - 1) % 8 == 0 (473, 641; BAM `train.py`).
        with_class_slot: add the int32 [B] "class_slot" input (BAM).

    Returns:
        [query_image [B,H,W,3], support_images [B,K,H,W,3],
        support_masks [B,K,H,W] (float32; int masks are cast)] (+ class_slot).
    """
    try:
        height, width = image_size
    except (TypeError, ValueError):
        height = width = object()
    if not all(s is None or (isinstance(s, int) and not isinstance(s, bool))
               for s in (height, width)) or not all(check_image_size(s) for s in (height, width)):
        raise ValueError(
            f"image_size={image_size!r} is not accepted: give (height, width) with None or "
            "sizes where (size - 1) % 8 == 0, e.g. (473, 473) (Pascal) or (641, 641) (COCO).")
    inputs = [
        keras.Input((height, width, 3), name=QUERY_IMAGE),
        keras.Input((None, height, width, 3), name=SUPPORT_IMAGES),
        keras.Input((None, height, width), name=SUPPORT_MASKS),
    ]
    if with_class_slot:
        inputs.append(keras.Input((), dtype="int32", name=CLASS_SLOT))
    return inputs


def _shapes(query, supports, masks):
    return (f"query_image {tuple(query.shape)}, support_images {tuple(supports.shape)}, "
            f"support_masks {tuple(masks.shape)}")


def _equal_or_unknown(a, b):
    return a is None or b is None or a == b


@keras.saving.register_keras_serializable(package="svf_tf")
class EpisodeInputs(keras.layers.Layer):
    """Validates an episode batch and flattens the shots: the first layer of every model.

    `layer([query_image, support_images, support_masks])` returns
    `[query_image, supports [B*K, H, W, 3], foreground [B*K, H, W, 1]]`,
    episode-major (row b*K + k is shot k of episode b), so the backbone runs
    once on all supports. The foreground mask is `support_mask == 1`: 255
    (ignore, padding) counts as background in supports (the mask
    `(s_y[:,i,:,:] == 1).float()` of PFENet `PFENet.forward` and BAM
    `OneModel.forward`).

    Checked at call time, with a ValueError naming the shapes/values:
    - ranks and the RGB channel;
    - K of support images == K of support masks == the model's `shot`;
    - the same batch size in all inputs, the same H, W in support images and
      masks;
    - (H - 1) % 8 == 0 and (W - 1) % 8 == 0 (the heads' feature alignment);
    - support mask values in {0, 1, 255}.
    Eagerly these raise ValueError. Inside a `tf.function` whose shapes or
    values are unknown while tracing, the same checks run as TF assertions
    (InvalidArgumentError with the same message).

    Args:
        shot: K, the number of supports the model was built for.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, shot, **kwargs):
        super().__init__(**kwargs)
        if isinstance(shot, bool) or not isinstance(shot, int) or shot < 1:
            raise ValueError(f"EpisodeInputs: shot={shot!r} must be a positive int.")
        self.shot = shot

    def _check_static(self, query, supports, masks):
        shapes = _shapes(query, supports, masks)
        if len(query.shape) != 4 or query.shape[-1] != 3:
            raise ValueError(f"query_image must be [B, H, W, 3]; got {shapes}.")
        if len(supports.shape) != 5 or supports.shape[-1] != 3:
            raise ValueError(f"support_images must be [B, K, H, W, 3]; got {shapes}.")
        if len(masks.shape) != 4:
            raise ValueError(f"support_masks must be [B, K, H, W]; got {shapes}.")
        k_images, k_masks = supports.shape[1], masks.shape[1]
        if not _equal_or_unknown(k_images, k_masks):
            raise ValueError(
                f"support_images has K={k_images} shots but support_masks has K={k_masks}: "
                f"give one mask per support image ({shapes}).")
        for k in (k_images, k_masks):
            if k is not None and k != self.shot:
                raise ValueError(
                    f"This model was built for shot={self.shot} but the supports have K={k} "
                    f"({shapes}); build a model with shot={k} (BAM and the k-shot "
                    "reductions are per-shot).")
        batches = [t.shape[0] for t in (query, supports, masks) if t.shape[0] is not None]
        if len(set(batches)) > 1:
            raise ValueError(f"Batch sizes differ between the inputs: {shapes}.")
        for axis in (1, 2):
            if not _equal_or_unknown(supports.shape[axis + 1], masks.shape[axis + 1]):
                raise ValueError(
                    f"support_images and support_masks differ in spatial size: {shapes}.")
        for name, tensor, axes in ((QUERY_IMAGE, query, (1, 2)),
                                   (SUPPORT_IMAGES, supports, (2, 3))):
            sizes = [tensor.shape[a] for a in axes]
            if not all(check_image_size(s) for s in sizes):
                raise ValueError(
                    f"{name} is {sizes[0]}x{sizes[1]} ({shapes}); the models need (size - 1) "
                    "% 8 == 0 in both directions (e.g. 473, 641, 33): resize or pad the "
                    "episode to such a size.")

    def _check_values(self, masks):
        values = np.unique(keras.ops.convert_to_numpy(masks))
        bad = [int(v) if float(v).is_integer() else v for v in values.tolist()
               if v not in MASK_VALUES]
        if bad:
            raise ValueError(
                f"support_masks may only hold {MASK_VALUES} (background, foreground, ignore); "
                f"got values {bad[:10]}{' ...' if len(bad) > 10 else ''}. Binarise the "
                "support labels for the episode's class first (class -> 1, 255 kept, "
                "anything else -> 0).")

    def _graph_assertions(self, query, supports, masks):
        q, s, m = tf.shape(query), tf.shape(supports), tf.shape(masks)
        message = f"EpisodeInputs (shot={self.shot}): "
        checks = [
            tf.debugging.assert_equal(s[1], m[1], message=message + "support_images and "
                                      "support_masks have different K"),
            tf.debugging.assert_equal(s[1], self.shot, message=message + "K differs from "
                                      "the model's shot"),
            tf.debugging.assert_equal(tf.stack([q[0], s[0]]), tf.stack([m[0], m[0]]),
                                      message=message + "batch sizes differ between inputs"),
            tf.debugging.assert_equal(s[2:4], m[2:4], message=message + "support_images and "
                                      "support_masks differ in spatial size"),
            tf.debugging.assert_equal(tf.math.floormod(tf.concat([q[1:3], s[2:4]], 0) - 1, 8),
                                      tf.zeros([4], tf.int32),
                                      message=message + "image sizes need (size - 1) % 8 == 0"),
        ]
        valid = tf.reduce_all((masks == 0) | (masks == 1) | (masks == IGNORE_LABEL))
        checks.append(tf.debugging.Assert(valid, [message + "support_masks may only hold "
                                                  "0, 1, 255"]))
        return checks

    def call(self, inputs):
        query, supports, masks = inputs
        self._check_static(query, supports, masks)
        if tf.executing_eagerly():
            self._check_values(masks)
        else:
            with tf.control_dependencies(self._graph_assertions(query, supports, masks)):
                query, supports, masks = (tf.identity(query), tf.identity(supports),
                                          tf.identity(masks))
        # Static sizes where known (a model built for a fixed image size keeps them).
        dynamic = tf.shape(supports)
        height = supports.shape[2] if supports.shape[2] is not None else dynamic[2]
        width = supports.shape[3] if supports.shape[3] is not None else dynamic[3]
        flat_supports = tf.reshape(supports, [-1, height, width, 3])
        foreground = tf.reshape(tf.cast(tf.equal(masks, 1), supports.dtype),
                                [-1, height, width, 1])
        return [query, flat_supports, foreground]

    def compute_output_shape(self, input_shape):
        query_shape, support_shape, _ = input_shape
        batch = None if support_shape[0] is None else support_shape[0] * self.shot
        return [tuple(query_shape), (batch, *support_shape[2:]),
                (batch, *support_shape[2:4], 1)]

    def get_config(self):
        return {**super().get_config(), "shot": self.shot}
