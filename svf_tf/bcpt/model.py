"""The BCPT pre-training network: backbone -> layer4 embeddings -> W, plus the centres' state.

BCPT paper Sec. 2.2: pixel embeddings are the backbone's last layer
(layer4, D = 2048 ResNet-50, 512 VGG16); a linear projection W (D x C, a
1x1 convolution without bias) scores the C base classes (Eq. 3). The
background centres P and the guidance state are non-trainable variables
of `BackgroundCentres`, so they are in every checkpoint (the checkpoint
holds `model.variables`) and resume exactly; they change only through
the updates of Eq. 1 and Eq. 7 (`svf_tf.bcpt.task`).
"""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.bcpt.guidance import kmeans_init
from svf_tf.ops.align_corners_resize import resize_align_corners, spatial_size
from svf_tf.ops.safe_norm import safe_l2_norm


def initial_centres(dim, clusters, seed):
    """[D, K] unit columns drawn from a normal distribution by `seed` (NumPy)."""
    centres = np.random.default_rng(seed).standard_normal((dim, clusters))
    return (centres / np.linalg.norm(centres, axis=0, keepdims=True)).astype(np.float32)


class BackgroundCentres(keras.layers.Layer):
    """The state of online clustering with guidance: P, the last G and k-means' start.

    Args:
        dim: D, the embedding size.
        clusters: K >= 2.
        num_classes: C, the base classes (k-means needs C >= K - 1).
        seed: draws the initial centres and the k-means start.
        **kwargs: base `Layer` arguments.

    A holder of state (never called): `svf_tf.bcpt.task` reads and assigns
    its weights. Weights (all non-trainable): `centres` [D, K]; `guidance` [K-1, D], the
    guidance vectors of the last iteration (zeros before the first);
    `kmeans_start` [K-1] int32, the indices of the base-class vectors k-means
    starts from.
    """

    def __init__(self, dim, clusters, num_classes, seed, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.clusters, self.num_classes, self.seed = dim, clusters, num_classes, seed
        self.centres = self.add_weight(
            shape=(dim, clusters), name="centres", trainable=False,
            initializer=keras.initializers.Constant(initial_centres(dim, clusters, seed)))
        self.guidance = self.add_weight(shape=(clusters - 1, dim), name="guidance",
                                        trainable=False, initializer="zeros")
        self.kmeans_start = self.add_weight(
            shape=(clusters - 1,), name="kmeans_start", trainable=False, dtype="int32",
            initializer=keras.initializers.Constant(
                kmeans_init(num_classes, clusters - 1, seed + 1)))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "clusters": self.clusters,
                "num_classes": self.num_classes, "seed": self.seed}


class BCPTModel(keras.Model):
    """`model(images)` -> {"embeddings": [B,h,w,D], "class_scores": [B,h,w,C]} (layer4 grid).

    Args:
        backbone: a backbone from `svf_tf.backbones.build_backbone` (its
            output dict has "layer4").
        num_classes: C, the base classes (background is the centres).
        clusters: K.
        seed: the centres' and k-means' seed (the run's --seed).
        normalize: L2-normalise the embeddings (`--bcpt_embedding=l2`).
    """

    def __init__(self, backbone, num_classes, clusters, seed, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.normalize = normalize
        dim = backbone.output["layer4"].shape[-1]
        self.projection = keras.layers.Conv2D(num_classes, 1, use_bias=False,
                                              name="bcpt_projection")
        self.state = BackgroundCentres(dim, clusters, num_classes, seed, name="bcpt_centres")
        self.projection.build((None, None, None, dim))

    def build(self, input_shape):
        # Every part is built in __init__ (the backbone is a functional model).
        self.built = True

    def call(self, images, training=None):
        embeddings = self.backbone(images, training=training)["layer4"]
        if self.normalize:
            norm = safe_l2_norm(embeddings, axis=-1, keepdims=True)
            embeddings = embeddings / tf.where(norm > 0, norm, tf.ones_like(norm))
        return {"embeddings": embeddings, "class_scores": self.projection(embeddings)}

    @property
    def class_vectors(self):
        """W as [D, C] (the base-class vectors as columns)."""
        kernel = self.projection.kernel
        return tf.reshape(kernel, [kernel.shape[2], kernel.shape[3]])

    def segmentation_logits(self, images):
        """[B, H, W, 1 + C]: background = max_k <i, p_k>, then the classes, at the input size."""
        outputs = self(images, training=False)
        background = tf.reduce_max(tf.einsum("bhwd,dk->bhwk", outputs["embeddings"],
                                             self.state.centres), axis=-1, keepdims=True)
        logits = tf.concat([background, outputs["class_scores"]], axis=-1)
        return resize_align_corners(logits, spatial_size(images))
