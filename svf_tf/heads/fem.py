"""PFENet's feature enrichment module, FEM (PFENet `model/PFENet.py`, `PFENet.forward`)."""

import keras
import tensorflow as tf

from svf_tf.heads.classifier_head import ClassifierHead
from svf_tf.ops.adaptive_avg_pool import adaptive_average_pool
from svf_tf.ops.align_corners_resize import resize_align_corners, spatial_size
from svf_tf.ops.initializers import torch_conv2d

# The SVF authors' PFENet hard-codes PFENet's Pascal bins for every dataset
# (SVF code `model/pfenet.py`, `OneModel.__init__`: `self.ppm_scales = [60, 30, 15, 8]`).
PFENET_BINS = (60, 30, 15, 8)


def check_pyramid_bins(pyramid_bins):
    """Validates bins: positive ints (cells) or floats in (0, 1] (fractions of the map).

    Returns:
        The bins as a tuple.
    """
    bins = tuple(pyramid_bins) if isinstance(pyramid_bins, (list, tuple)) else None
    ok = bins and all(
        (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
        or (isinstance(b, float) and 0.0 < b <= 1.0) for b in bins)
    if not ok:
        raise ValueError(
            f"pyramid_bins={pyramid_bins!r} is not accepted: give a non-empty list of "
            "positive ints (absolute bin sizes, e.g. PFENet's Pascal [60, 30, 15, 8]) or "
            "floats in (0, 1] (fractions of the feature size, e.g. PFENet's COCO "
            "[1.0, 0.5, 0.25, 0.125]).")
    return bins


def bin_size(pyramid_bin, height, width):
    """(bin_h, bin_w) of one pyramid bin for a feature map of (height, width).

    An int is the size itself; a float is int(size * fraction), PFENet's rule
    for its COCO bins (81 * 0.125 -> 10). Sizes may be tensors.
    """
    if isinstance(pyramid_bin, int):
        return pyramid_bin, pyramid_bin

    def scaled(size):
        if isinstance(size, int):
            return int(size * pyramid_bin)
        return tf.cast(tf.floor(tf.cast(size, tf.float64) * pyramid_bin), tf.int32)

    return scaled(height), scaled(width)


@keras.saving.register_keras_serializable(package="svf_tf")
class FeatureEnrichment(keras.layers.Layer):
    """`layer([query_feat, prototype, prior])` -> [merged, aux_logits_0, ...].

    For each bin i (PFENet `PFENet.forward`): pool the query features to the bin
    (PyTorch adaptive average pooling), tile the prototype and resize the
    prior (align_corners) to it, merge (1x1, 2C+1 -> C, ReLU); for i >= 1 add
    alpha_conv([x, previous bin's output resized to this bin]); add the
    residual beta_conv(x) (two 3x3 + ReLU); classify it (`inner_cls`, the
    auxiliary output); and resize x back to the query feature size. The
    merged output concatenates the resized bin outputs (len(bins) * C).
    All convs are bias-free except the classifiers' last 1x1.

    Args:
        pyramid_bins: ints (absolute bin sizes; default PFENet's Pascal
            [60, 30, 15, 8], which the SVF authors use for every dataset) or
            floats in (0, 1] (fractions of the query feature size, PFENet's
            COCO [1.0, 0.5, 0.25, 0.125]).
        reduce_dim: C, the query/prototype channels (256).
        num_classes: classes of the auxiliary classifiers (2).
        dropout: classifier channel dropout (0.1).
        **kwargs: base `Layer` arguments.

    Inputs:
        query_feat [B, h, w, C]; prototype [B, 1, 1, C]; prior [B, h, w, 1].

    Returns:
        [merged [B, h, w, len(bins) * C], aux logits [B, bin_h, bin_w, 2]
        for each bin].

    Raises (call):
        ValueError: if a fractional bin of the actual feature size is 0 cells
            (input too small for these bins).
    """

    def __init__(self, pyramid_bins=PFENET_BINS, reduce_dim=256, num_classes=2, dropout=0.1,
                 **kwargs):
        super().__init__(**kwargs)
        self.pyramid_bins = check_pyramid_bins(pyramid_bins)
        self.reduce_dim = reduce_dim
        self.num_classes = num_classes
        self.dropout = dropout
        count = len(self.pyramid_bins)
        self.init_merge = [torch_conv2d(reduce_dim, 1, activation="relu", name=f"init_merge_{i}")
                           for i in range(count)]
        self.alpha_conv = [torch_conv2d(reduce_dim, 1, activation="relu", name=f"alpha_conv_{i}")
                           for i in range(count - 1)]
        # Flat list (two 3x3 convs per bin): Keras tracks lists of layers, not
        # lists of lists.
        self.beta_conv = [torch_conv2d(reduce_dim, 3, activation="relu",
                                       name=f"beta_conv_{i}_{j}")
                          for i in range(count) for j in range(2)]
        self.inner_cls = [ClassifierHead(num_classes, reduce_dim, dropout, name=f"inner_cls_{i}")
                          for i in range(count)]

    def build(self, input_shape):
        query_shape = input_shape[0]
        if query_shape[-1] != self.reduce_dim:
            raise ValueError(
                f"FeatureEnrichment '{self.name}': query features have {query_shape[-1]} "
                f"channels, expected reduce_dim={self.reduce_dim}.")
        c = self.reduce_dim
        for i in range(len(self.pyramid_bins)):
            self.init_merge[i].build((None, None, None, 2 * c + 1))
            if i:
                self.alpha_conv[i - 1].build((None, None, None, 2 * c))
            for conv in self.beta_conv[2 * i:2 * i + 2]:
                conv.build((None, None, None, c))
            self.inner_cls[i].build((None, None, None, c))
        self.built = True

    def _bin_sizes(self, query):
        height, width = query.shape[1], query.shape[2]
        static = height is not None and width is not None
        if not static:
            shape = tf.shape(query)
            height, width = shape[1], shape[2]
        sizes = []
        for pyramid_bin in self.pyramid_bins:
            size = bin_size(pyramid_bin, height, width)
            if static and min(size) < 1:
                raise ValueError(
                    f"FeatureEnrichment '{self.name}': pyramid bin {pyramid_bin} of the "
                    f"{height}x{width} query feature map has {size[0]}x{size[1]} cells; the "
                    f"input image is too small for pyramid_bins={list(self.pyramid_bins)}. "
                    "Use a larger input or absolute (int) bins.")
            if not static and isinstance(pyramid_bin, float):
                with tf.control_dependencies([tf.debugging.assert_positive(
                        tf.minimum(size[0], size[1]),
                        message=f"FeatureEnrichment: pyramid bin {pyramid_bin} of the query "
                                "feature map is 0 cells; the input image is too small.")]):
                    size = (tf.identity(size[0]), tf.identity(size[1]))
            sizes.append(size)
        return sizes

    def call(self, inputs, training=None):
        query, prototype, prior = inputs
        full_size = spatial_size(query)
        stored, aux = [], []
        for i, size in enumerate(self._bin_sizes(query)):
            pooled = adaptive_average_pool(query, size)
            grid = tf.shape(pooled)
            tiled = tf.broadcast_to(prototype, [grid[0], grid[1], grid[2], self.reduce_dim])
            x = tf.concat([pooled, tiled, resize_align_corners(prior, size)], axis=-1)
            x = self.init_merge[i](x)
            if i:
                previous = resize_align_corners(stored[-1], size)
                x = x + self.alpha_conv[i - 1](tf.concat([x, previous], axis=-1))
            residual = x
            for conv in self.beta_conv[2 * i:2 * i + 2]:
                residual = conv(residual)
            x = x + residual
            aux.append(self.inner_cls[i](x, training=training))
            stored.append(resize_align_corners(x, full_size))
        return [tf.concat(stored, axis=-1), *aux]

    def compute_output_shape(self, input_shape):
        query_shape = input_shape[0]
        batch, height, width = query_shape[:3]
        merged = (batch, height, width, self.reduce_dim * len(self.pyramid_bins))
        aux = []
        for pyramid_bin in self.pyramid_bins:
            if isinstance(pyramid_bin, int):
                size = (pyramid_bin, pyramid_bin)
            else:
                size = tuple(None if s is None else int(s * pyramid_bin)
                             for s in (height, width))
            aux.append((batch, *size, self.num_classes))
        return [merged, *aux]

    def get_config(self):
        return {**super().get_config(), "pyramid_bins": self.pyramid_bins,
                "reduce_dim": self.reduce_dim, "num_classes": self.num_classes,
                "dropout": self.dropout}
