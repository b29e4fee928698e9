"""A tiny stand-in backbone with `build_backbone`'s interface, for fast head tests.

image [B, H, W, 3] -> {"layer0".."layer4"} at strides 4, 4, 8, 8, 8 ("resnet"
layout) or 2, 4, 8, 16, 16 ("vgg" layout: layer2 larger than layer3, so the
heads must resize it). Fine-tuning as `build_backbone` does it: "freeze"
(nothing trains, a StopGradient after every stage), "svf" (every conv an
SVF layer, only the singular values of layer2..layer4 train, a StopGradient
after layer1) or "full" (every conv trains).
"""

import keras

import svf_tf
from svf_tf.backbones import StopGradient

CHANNELS = (4, 6, 8, 10, 12)


def fake_backbone(layout="resnet", finetune="freeze", name="fake_backbone"):
    image = keras.Input((None, None, 3), name="image")
    strides = {"resnet": (4, 1, 2, 1, 1), "vgg": (2, 2, 2, 2, 1)}[layout]
    dilation = {"resnet": (1, 1, 1, 2, 4), "vgg": (1, 1, 1, 1, 1)}[layout]
    x, features, convs = image, {}, {}
    for stage, (channels, stride, rate) in enumerate(zip(CHANNELS, strides, dilation,
                                                         strict=True)):
        conv = keras.layers.Conv2D(channels, 3, strides=stride, dilation_rate=rate,
                                   padding="same", activation="relu", name=f"stage{stage}_conv")
        x = conv(x)
        convs[conv.name] = stage
        features[f"layer{stage}"] = x
    model = keras.Model(image, features, name=name)
    if finetune == "freeze":
        cut_before = 5
    elif finetune == "svf":
        cut_before = 2
    elif finetune == "full":
        cut_before = 0
    else:
        raise ValueError(finetune)
    # Rebuild with StopGradient after the frozen stages, as build_backbone does.
    x, features = image, {}
    for stage in range(5):
        x = model.get_layer(f"stage{stage}_conv")(x)
        if stage < cut_before:
            x = StopGradient(name=f"layer{stage}_stop_gradient")(x)
        features[f"layer{stage}"] = x
    model = keras.Model(image, features, name=name)
    if finetune == "svf":
        model = svf_tf.apply_svf(model)
    for layer in model.layers:
        if layer.name in convs:
            layer.trainable = finetune == "full" or (finetune == "svf" and convs[layer.name] >= 2)
    return model
