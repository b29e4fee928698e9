"""The references' segmentation classifier: 3x3 conv, ReLU, channel dropout, 1x1 conv."""

import keras

from svf_tf.ops.initializers import torch_conv2d

# PyTorch BatchNorm2d defaults: eps 1e-5, momentum 0.1 (Keras counts momentum
# the other way round: 0.9).
TORCH_BN_EPSILON = 1e-5
TORCH_BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="svf_tf")
class ClassifierHead(keras.layers.Layer):
    """3x3 conv (no bias) [+ BN] + ReLU + Dropout2d + 1x1 conv with bias.

    This is `cls_meta` of the baseline/BAM, PFENet's `cls` and `inner_cls`
    (hidden 256, no BN, dropout 0.1; BAM `model/BAM.py`, PFENet
    `model/PFENet.py`) and PSPNet's `cls` (hidden 512 with BN; BAM
    `model/PSPNet.py`). Dropout2d drops whole channels
    (`SpatialDropout2D`) and is active only in training.

    Args:
        num_classes: output channels (2 for the few-shot heads).
        hidden: channels of the 3x3 conv.
        dropout: channel-dropout rate.
        batch_norm: BN after the 3x3 conv (PSPNet).
        **kwargs: base `Layer` arguments.

    Returns (call): logits [B, H, W, num_classes] at the input resolution.
    """

    def __init__(self, num_classes, hidden=256, dropout=0.1, batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.hidden = hidden
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.conv = torch_conv2d(hidden, 3, activation=None if batch_norm else "relu",
                                 name="conv")
        self.norm = (keras.layers.BatchNormalization(epsilon=TORCH_BN_EPSILON,
                                                     momentum=TORCH_BN_MOMENTUM, name="bn")
                     if batch_norm else None)
        self.drop = keras.layers.SpatialDropout2D(dropout, name="dropout")
        self.classifier = torch_conv2d(num_classes, 1, hidden, use_bias=True,
                                       name="classifier")

    def build(self, input_shape):
        self.conv.build(input_shape)
        hidden_shape = (*input_shape[:-1], self.hidden)
        if self.norm is not None:
            self.norm.build(hidden_shape)
        self.drop.build(hidden_shape)
        self.classifier.build(hidden_shape)
        self.built = True

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if self.norm is not None:
            x = keras.ops.relu(self.norm(x, training=training))
        x = self.drop(x, training=training)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "hidden": self.hidden,
                "dropout": self.dropout, "batch_norm": self.batch_norm}
