"""Bilinear resize with PyTorch's `align_corners=True`.

Every resize inside the reference models is `F.interpolate(...,
mode="bilinear", align_corners=True)` (PFENet `model/PFENet.py`,
`PFENet.forward`; BAM `model/BAM.py`, `OneModel.forward`). TF2's
`tf.image.resize` has no `align_corners` argument.
"""

import keras
import tensorflow as tf


def resize_align_corners(images, size):
    """Bilinear resize of [B, H, W, C] with align_corners=True.

    Output pixel i samples input coordinate i * (in - 1) / (out - 1) (0 when
    out == 1), so corners map to corners. This is `F.interpolate(...,
    mode="bilinear", align_corners=True)`, used for every resize inside the
    references' models; TF2's `tf.image.resize` (half-pixel centres) is not
    it. `size` may be a tensor, so the op works with sizes known only at run
    time (SavedModel export with unknown H, W).

    Args:
        images: float tensor [B, H, W, C].
        size: (out_h, out_w) as ints or an int32 tensor of shape [2].

    Returns:
        [B, out_h, out_w, C] tensor of the input's dtype.
    """
    images = tf.convert_to_tensor(images)
    size = tf.cast(tf.stack(size) if isinstance(size, (list, tuple)) else size, tf.int32)
    # The op behind tf.compat.v1.image.resize_bilinear(align_corners=True),
    # called directly to skip its deprecation warning. It returns float32.
    resized = tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=True,
                                        half_pixel_centers=False)
    return tf.cast(resized, images.dtype)


def spatial_size(tensor):
    """(H, W) of a [B, H, W, ...] tensor as an int32 tensor (static values when known)."""
    static = tensor.shape[1:3]
    if static[0] is not None and static[1] is not None:
        return tf.constant([static[0], static[1]], tf.int32)
    return tf.shape(tensor)[1:3]


@keras.saving.register_keras_serializable(package="svf_tf")
class AlignCornersResize(keras.layers.Layer):
    """Resizes feature maps bilinearly with align_corners=True.

    Either to a fixed `size`, or to the spatial size of a second input
    (`layer([x, like])`), which is how the models align masks, priors and
    logits with feature maps whose size depends on the input image. When
    both static sizes are known and equal the input is returned as is (the
    align_corners resize to the same size is the identity).

    Args:
        size: optional (height, width); if None, call with `[x, like]`.
        **kwargs: base `Layer` arguments.

    Example:
    ```python
    up = AlignCornersResize()
    logits = up([logits_60x60, image_473x473])   # [B, 473, 473, 2]
    ```
    """

    def __init__(self, size=None, **kwargs):
        super().__init__(**kwargs)
        if size is not None:
            size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
            if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
                raise ValueError(
                    f"AlignCornersResize: size={size!r} must be a positive int or a pair of "
                    "positive ints (height, width), or None to resize like a second input.")
        self.size = size

    def _target(self, inputs):
        if self.size is not None:
            if isinstance(inputs, (list, tuple)):
                raise ValueError(
                    f"AlignCornersResize '{self.name}' has size={self.size}; call it on one "
                    "tensor, not on [x, like].")
            return inputs, self.size
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"AlignCornersResize '{self.name}' has no size: call it on [x, like] to "
                "resize x to like's spatial size.")
        x, like = inputs
        return x, tuple(like.shape[1:3])

    def call(self, inputs):
        x, target = self._target(inputs)
        if tuple(x.shape[1:3]) == target and None not in target:
            return x
        if self.size is None:
            return resize_align_corners(x, spatial_size(inputs[1]))
        return resize_align_corners(x, self.size)

    def compute_output_shape(self, input_shape):
        if self.size is not None:
            return (input_shape[0], *self.size, input_shape[-1])
        x_shape, like_shape = input_shape
        return (x_shape[0], like_shape[1], like_shape[2], x_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size}
