"""SVF-merged SavedModel export: serving signature and identical logits after loading."""

import os

import numpy as np
import pytest
import tensorflow as tf

import svf_tf
from svf_tf import SVFConv2D
from svf_tf.export.saved_model import export_fsss_model
from svf_tf.heads.bam import build_bam_model
from svf_tf.heads.pfenet import build_pfenet_model
from svf_tf.models.build_model import build_fsss_model
from svf_tf.surgery.layer_paths import iter_layers
from tests.models.fake_backbone import fake_backbone
from tests.models.model_checks import make_episode


def serve(loaded, batch):
    return loaded.serve(tf.constant(batch["query_image"]),
                        tf.constant(batch["support_images"]),
                        tf.constant(batch["support_masks"], tf.float32))


def assert_exported_like(model, path, shot, sizes=((1, 33), (2, 41))):
    merged = export_fsss_model(model, str(path))
    assert not any(isinstance(layer, SVFConv2D) for _, layer in iter_layers(merged))
    loaded = tf.saved_model.load(str(path))
    specs = loaded.signatures["serve"].structured_input_signature[1]
    assert specs["query_image"].shape.as_list() == [None, None, None, 3]
    assert specs["support_images"].shape.as_list() == [None, shot, None, None, 3]
    assert specs["support_masks"].shape.as_list() == [None, shot, None, None]
    for batch_size, size in sizes:
        batch = make_episode(shot, batch=batch_size, size=size)
        expected = model(batch)
        actual = serve(loaded, batch)
        np.testing.assert_allclose(actual["logits"], expected["logits"], rtol=1e-4, atol=1e-5)
    return loaded, actual, expected


@pytest.mark.slow
def test_baseline_with_a_real_svf_backbone(backbones, tmp_path):
    model = build_fsss_model("baseline", backbones("vgg16", "svf"), 1)
    # Train the singular values a little, so merging has something to fold in.
    for layer in iter_layers(model):
        if isinstance(layer[1], SVFConv2D) and layer[1].trainable:
            s = layer[1].svf_s
            s.assign(s * np.random.default_rng(0).uniform(0.5, 1.5, s.shape).astype("float32"))
    assert_exported_like(model, tmp_path / "baseline", 1)


@pytest.mark.slow  # two more SavedModel exports (~14 s); PFENet's is also exported below
def test_pfenet_and_bam_export(tmp_path):
    backbone = fake_backbone("resnet", "svf")
    pfenet = build_pfenet_model(backbone, 2, pyramid_bins=(6, 3))
    _, actual, expected = assert_exported_like(pfenet, tmp_path / "pfenet", 2)
    np.testing.assert_allclose(actual["aux_logits_1"], expected["aux_logits"][1], rtol=1e-4,
                               atol=1e-5)
    bam = build_bam_model(backbone, 2, base_backbone=fake_backbone("resnet", "freeze", "base"))
    _, actual, expected = assert_exported_like(bam, tmp_path / "bam", 2, sizes=((1, 33),))
    np.testing.assert_allclose(actual["meta_logits"], expected["meta_logits"], rtol=1e-4,
                               atol=1e-5)


def test_bad_masks_fail_inside_the_saved_model(tmp_path):
    model = build_fsss_model("baseline", fake_backbone("vgg", "svf"), 1)
    export_fsss_model(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    batch = make_episode(1)
    batch["support_masks"] = batch["support_masks"] * 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="0, 1, 255"):
        serve(loaded, batch)


def test_pfenet_with_fractional_bins_pools_at_the_served_size(tmp_path):
    # PFENet's COCO-style fractions: 33 px -> 5x5 features -> bins 5, 2, 1;
    # 41 px -> 6x6 -> 6, 3, 1. The SavedModel computes them at run time.
    pfenet = build_pfenet_model(fake_backbone("resnet", "freeze"), 1,
                                pyramid_bins=(1.0, 0.5, 0.25))
    _, actual, expected = assert_exported_like(pfenet, tmp_path / "pfenet", 1)
    for i in range(3):
        np.testing.assert_allclose(actual[f"aux_logits_{i}"], expected["aux_logits"][i],
                                   rtol=1e-4, atol=1e-5)


def directory_size(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


@pytest.mark.slow  # three PFENet exports, ~11 s
def test_one_saved_model_serves_several_adapters(tmp_path):
    model = build_pfenet_model(fake_backbone("resnet", "svf"), 1, pyramid_bins=(6, 3))
    svf = [layer for _, layer in iter_layers(model) if isinstance(layer, SVFConv2D)]
    batch = make_episode(1, size=33)
    rng = np.random.default_rng(0)
    files, expected = [], {}
    original = [layer.svf_s.numpy() for layer in svf]
    for name in ("fold0_1shot", "fold1_1shot"):
        for layer, s in zip(svf, original, strict=True):
            layer.svf_s.assign(s * rng.uniform(0.5, 1.5, s.shape).astype(np.float32))
        files.append(svf_tf.save_svf_weights(model, tmp_path / f"{name}.svf.npz"))
        expected[name] = model(batch)["logits"].numpy()  # the Keras model with this adapter
    for layer, s in zip(svf, original, strict=True):
        layer.svf_s.assign(s)
    export_fsss_model(model, str(tmp_path / "both"), adapters=files)
    for layer, s in zip(svf, original, strict=True):  # the model's own factors are back
        np.testing.assert_array_equal(layer.svf_s.numpy(), s)
    loaded = tf.saved_model.load(str(tmp_path / "both"))
    assert {"serve", "serve_fold0_1shot", "serve_fold1_1shot"} <= set(loaded.signatures)
    inputs = [tf.constant(batch["query_image"]), tf.constant(batch["support_images"]),
              tf.constant(batch["support_masks"], tf.float32)]
    for name, logits in expected.items():
        served = getattr(loaded, f"serve_{name}")(*inputs)["logits"]
        np.testing.assert_allclose(served, logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(loaded.serve(*inputs)["logits"],
                                  loaded.serve_fold0_1shot(*inputs)["logits"])
    # Size: the layers that are not SVF layers are stored once for both adapters.
    export_fsss_model(model, str(tmp_path / "one"))
    both, one = directory_size(tmp_path / "both"), directory_size(tmp_path / "one")
    print(f"SavedModel with 2 adapters: {both:,} B; one export: {one:,} B; "
          f"2 separate exports: {2 * one:,} B")
    assert both < 2 * one
    with pytest.raises(ValueError, match="several files are named 'fold0_1shot'"):
        export_fsss_model(model, str(tmp_path / "dup"), adapters=[files[0], files[0]])
