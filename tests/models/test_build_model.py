"""build_fsss_model: backbone variants per method, BAM's second backbone, bad options."""

import keras
import numpy as np
import pytest

from svf_tf.backbones import FinetuneSpec
from svf_tf.models import build_model as build_model_module
from svf_tf.models.build_model import build_fsss_model
from tests.models.fake_backbone import fake_backbone
from tests.models.model_checks import make_episode


@pytest.fixture
def recorded_backbones(monkeypatch):
    """build_backbone replaced by a recorder returning tiny stand-ins."""
    calls = []

    def fake_build_backbone(name, weights=None, *, input_shape, finetune, model_name=None,
                            **options):
        calls.append(dict(name=name, weights=weights, input_shape=input_shape,
                          finetune=finetune, model_name=model_name, **options))
        mode = "svf" if FinetuneSpec.from_option(finetune).mode == "svf" else "freeze"
        return fake_backbone("resnet", mode, name=model_name or f"{name}_backbone")

    monkeypatch.setattr(build_model_module, "build_backbone", fake_build_backbone)
    return calls


@pytest.mark.parametrize("method,dilation", [("baseline", "torchvision"),
                                             ("pfenet", "torchvision"), ("bam", "all_blocks")])
def test_resnet_variant_per_method(recorded_backbones, method, dilation):
    options = {"pyramid_bins": (4, 2)} if method == "pfenet" else {}
    build_fsss_model(method, "resnet50", 1, weights="w.h5", **options)
    (call,) = recorded_backbones
    assert call["stem"] == "deep" and call["dilation"] == dilation
    assert call["weights"] == "w.h5"
    assert FinetuneSpec.from_option(call["finetune"]) == FinetuneSpec("freeze")
    assert call["input_shape"] == (None, None, 3)


def test_bam_with_svf_gets_an_untouched_frozen_base_backbone(recorded_backbones):
    model = build_fsss_model("bam", "vgg16", 1, weights="stage1.h5", finetune="svf",
                             image_size=(33, 33))
    meta_call, base_call = recorded_backbones
    assert FinetuneSpec.from_option(meta_call["finetune"]).mode == "svf"
    assert base_call["finetune"] == "freeze"
    assert meta_call["weights"] == base_call["weights"] == "stage1.h5"
    assert meta_call["batch_norm"] and base_call["batch_norm"]
    assert base_call["model_name"] == "vgg16_base_backbone"
    names = {layer.name for layer in model.layers}
    assert {"vgg16_backbone_trunk", "vgg16_backbone_layer4", "vgg16_base_backbone"} <= names


def test_backbone_options_override_the_defaults(recorded_backbones):
    build_fsss_model("baseline", "resnet50", 5, backbone_options={"stem": "keras"})
    assert recorded_backbones[0]["stem"] == "keras"
    assert recorded_backbones[0]["dilation"] == "torchvision"


def test_backbone_bn_reaches_every_backbone_built(recorded_backbones):
    build_fsss_model("bam", "resnet50", 1, finetune="svf",
                     backbone_options={"backbone_bn": "batch_stats"})
    assert [call["backbone_bn"] for call in recorded_backbones] == ["batch_stats"] * 2


def test_a_backbone_model_is_used_as_built():
    backbone = fake_backbone("resnet", "svf")
    model = build_fsss_model("baseline", backbone, 1, kshot_reduce="mean")
    assert model.get_layer("kshot_prior").mode == "mean"
    assert model.get_layer("fake_backbone_trunk").get_layer("stage2_conv") is \
        backbone.get_layer("stage2_conv")
    with pytest.raises(ValueError, match=r"\['finetune'\] apply to a backbone name"):
        build_fsss_model("baseline", backbone, 1, finetune="svf")


def _single_output_model():
    image = keras.Input((None, None, 3))
    return keras.Model(image, keras.layers.Conv2D(4, 3)(image))


@pytest.mark.parametrize("args,kwargs,message", [
    (("psp", "resnet50"), {}, "method='psp'"),
    (("baseline", "resnet50"), {"pyramid_bins": [8]}, r"unknown option\(s\) \['pyramid_bins'\]"),
    (("bam", 3), {}, "backbone=3"),
    (("pfenet", keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])), {},
     "give a functional keras.Model"),
    (("pfenet", _single_output_model()), {}, "must map one image input to a dict"),
])
def test_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_fsss_model(*args, **kwargs)


def test_real_vgg16_by_name_runs():
    model = build_fsss_model("baseline", "vgg16", 1, image_size=(33, 33))
    trunk = model.get_layer("vgg16_backbone_trunk")
    # VGG16 with BatchNorm (the references' variant), frozen by default.
    assert isinstance(trunk.get_layer("block1_bn1"), keras.layers.BatchNormalization)
    assert not trunk.trainable_variables and not model.get_layer(
        "vgg16_backbone_layer4").trainable_variables
    outputs = model(make_episode(1))
    assert outputs["logits"].shape == (1, 33, 33, 2)
    assert np.isfinite(outputs["logits"].numpy()).all()
