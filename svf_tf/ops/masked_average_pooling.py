"""Masked average pooling: the support prototype (`Weighted_GAP` in PFENet `model/PFENet.py`)."""

import keras
from keras import ops

# Added to the mask area, as the references' `Weighted_GAP`; an all-background
# support gives a zero prototype instead of 0/0.
AREA_EPSILON = 0.0005


def masked_average_pooling(features, mask):
    """sum(features * mask) / (sum(mask) + 0.0005) over the spatial axes.

    Args:
        features: [N, H, W, C].
        mask: [N, H, W, 1] soft mask at the features' resolution.

    Returns:
        [N, 1, 1, C] prototypes.
    """
    weighted = ops.sum(features * mask, axis=(1, 2), keepdims=True)
    area = ops.sum(mask, axis=(1, 2), keepdims=True)
    return weighted / (area + AREA_EPSILON)


@keras.saving.register_keras_serializable(package="svf_tf")
class MaskedAveragePooling(keras.layers.Layer):
    """`layer([features, mask])`: the prototype of the masked region, [N, 1, 1, C].

    The mask must already be at the features' size (the models resize it
    with align_corners=True first, which makes it soft).
    """

    def call(self, inputs):
        features, mask = inputs
        if features.shape[1:3] != mask.shape[1:3] and None not in (
                *features.shape[1:3], *mask.shape[1:3]):
            raise ValueError(
                f"MaskedAveragePooling '{self.name}': features {tuple(features.shape)} and "
                f"mask {tuple(mask.shape)} differ in spatial size; resize the mask first.")
        return masked_average_pooling(features, ops.cast(mask, features.dtype))

    def compute_output_shape(self, input_shape):
        features_shape, _ = input_shape
        return (features_shape[0], 1, 1, features_shape[-1])
