"""BAM's base learner: PSPNet (PPM + classifier) on layer4 (BAM `model/PSPNet.py`, stage 1)."""

import keras

from svf_tf.backbones.backbone_split import check_backbone
from svf_tf.heads.classifier_head import ClassifierHead
from svf_tf.heads.ppm import PPM_BINS, PyramidPooling
from svf_tf.ops.align_corners_resize import AlignCornersResize

# Base-learner channels (background + base classes): 1 + 15 on Pascal-5i,
# 1 + 60 on COCO-20i (`classes: 16` / `61` in BAM's `config/*/*_base.yaml`).
PASCAL_BASE_CLASSES = 15
COCO_BASE_CLASSES = 60


@keras.saving.register_keras_serializable(package="svf_tf")
class PSPNetHead(keras.layers.Layer):
    """PPM + [3x3 conv 512 (no bias) + BN + ReLU + Dropout2d(0.1) + 1x1 conv] on layer4.

    BAM's `learner_base`: trained in stage 1 inside `build_pspnet_model`,
    then copied, frozen, into the BAM model. Its BNs are ordinary Keras BNs
    (batch statistics while trainable and training, as stage 1's SyncBN;
    running statistics once frozen).

    Args:
        in_channels: layer4 channels (2048 ResNet-50, 512 VGG16).
        num_classes: 1 + number of base classes (16 Pascal, 61 COCO).
        bins: PPM bins.
        hidden: classifier hidden channels (512).
        dropout: classifier channel dropout (0.1).
        **kwargs: base `Layer` arguments.

    Returns (call): logits [B, h, w, num_classes] at the layer4 resolution.
    """

    def __init__(self, in_channels, num_classes, bins=PPM_BINS, hidden=512, dropout=0.1,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.bins = tuple(bins)
        self.hidden = hidden
        self.dropout = dropout
        self.ppm = PyramidPooling(in_channels, self.bins, name="ppm")
        self.cls = ClassifierHead(num_classes, hidden, dropout, batch_norm=True, name="cls")

    def build(self, input_shape):
        self.ppm.build(input_shape)
        self.cls.build(self.ppm.compute_output_shape(input_shape))
        self.built = True

    def call(self, inputs, training=None):
        return self.cls(self.ppm(inputs, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels,
                "num_classes": self.num_classes, "bins": self.bins, "hidden": self.hidden,
                "dropout": self.dropout}


def build_pspnet_model(backbone, num_classes, *, bins=PPM_BINS, name="pspnet"):
    """BAM's stage-1 model: backbone -> layer4 -> `PSPNetHead` -> logits at the input size.

    For the `train_base` mode: build the backbone with `finetune="full"`
    (stage 1 trains everything) and the dilation BAM uses ("all_blocks",
    D1). The trained head is `model.get_layer("pspnet_head")`; pass it as
    `base_learner` to `build_bam_model`, and the backbone weights as the BAM
    backbone's weights.

    Args:
        backbone: a backbone from `svf_tf.backbones.build_backbone`.
        num_classes: 1 + base classes (16 Pascal, 61 COCO).
        bins: PPM bins.
        name: model name.

    Returns:
        A functional `keras.Model` mapping an image batch [B, H, W, 3] to
        {"logits": [B, H, W, num_classes]} (bilinear, align_corners).
    """
    check_backbone(backbone)
    image = keras.Input(backbone.inputs[0].shape[1:], name="image")
    features = backbone(image)["layer4"]
    head = PSPNetHead(features.shape[-1], num_classes, bins, name="pspnet_head")
    logits = AlignCornersResize(name="upsample_logits")([head(features), image])
    return keras.Model(image, {"logits": logits}, name=name)
