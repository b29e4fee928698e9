"""Weights files load by layer name and say what they set; a file that does not fit is refused.

Most checks use tiny conv/BatchNorm models named like VGG16(-BN)'s first
layers (fast); a few use the real VGG16 backbones, the case a user meets with
`--weights` and `--vgg_batch_norm`. Expected values come from the arrays of
the model that wrote the file, never from the loader.
"""

import re

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from svf_tf.backbones import build_backbone
from svf_tf.backbones.frozen_batch_norm import FrozenBatchNormalization
from svf_tf.backbones.torch_batch_norm import TorchBatchNormalization
from svf_tf.weights.pretrained import WeightsMismatchError, load_weights_file

BLOCKS = 5  # more than the three names an error shows, so it must count the rest


def tiny_vgg(batch_norm, seed, bn_class=keras.layers.BatchNormalization, filters=4,
             name="tiny", prefix=""):
    """Conv (+ BN) blocks named as VGG16(-BN)'s: block{b}_conv1 (, block{b}_bn1)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((None, None, 3))
    x = inputs
    for block in range(1, BLOCKS + 1):
        x = keras.layers.Conv2D(filters, 3, padding="same",
                                name=f"{prefix}block{block}_conv1")(x)
        if batch_norm:
            x = bn_class(name=f"{prefix}block{block}_bn1")(x)
    model = keras.Model(inputs, x, name=name)
    for variable in model.weights:  # random values everywhere (BN statistics included)
        variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(np.float32))
    return model


def saved(model, tmp_path, name="w.weights.h5"):
    path = str(tmp_path / name)
    model.save_weights(path)
    return path


def values(model):
    return {v.path: v.numpy().copy() for v in model.weights}


def assert_unchanged(model, before):
    for variable in model.weights:
        np.testing.assert_array_equal(variable.numpy(), before[variable.path], variable.path)


def assert_one_short_line(message, limit=300):
    """One line, at most `limit` characters besides the file path it names."""
    path = re.search(r"'(/[^']*)'", message)
    length = len(message) - (len(path.group(1)) if path else 0)
    assert "\n" not in message and length <= limit, (length, message)


def test_a_fitting_file_loads_every_variable_and_says_so(tmp_path):
    source = tiny_vgg(True, seed=1)
    target = tiny_vgg(True, seed=2)
    report = load_weights_file(target, saved(source, tmp_path), "the tiny backbone")
    assert report.complete and report.missing == [] and report.unexpected == []
    assert report.loaded == [f"block{b}_{kind}1" for b in range(1, BLOCKS + 1)
                             for kind in ("conv", "bn")]
    assert report.loaded_variables == len(source.weights) == 6 * BLOCKS
    for want, got in zip(source.weights, target.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), want.path)
    assert "10 layers loaded (30 variables); 0 layers of the model not set" in report.summary()


def test_a_batch_norm_file_into_a_model_without_batch_norm_is_refused(tmp_path):
    # The case in small: a VGG16-BN file into plain VGG16 used to load the convs
    # and drop every BatchNorm parameter silently.
    path = saved(tiny_vgg(True, seed=1), tmp_path)
    plain = tiny_vgg(False, seed=2)
    before = values(plain)
    with pytest.raises(WeightsMismatchError) as error:
        load_weights_file(plain, path, "the tiny backbone")
    message = str(error.value)
    assert_one_short_line(message)
    assert message.startswith(f"weights={path!r} does not fit the tiny backbone: ")
    assert f"{BLOCKS} layers of the file unused (block1_bn1, block2_bn1, block3_bn1, ... 2 more)" \
        in message
    assert "--vgg_batch_norm" in message and "--partial_weights" in message
    assert [p.layer for p in error.value.report.unexpected] == [
        f"block{b}_bn1" for b in range(1, BLOCKS + 1)]
    assert_unchanged(plain, before)  # nothing assigned


def test_partial_accepts_it_loading_what_fits_with_a_warning(tmp_path, caplog):
    source = tiny_vgg(True, seed=1)
    path = saved(source, tmp_path)
    plain = tiny_vgg(False, seed=2)
    with caplog.at_level("WARNING"):
        report = load_weights_file(plain, path, "the tiny backbone", partial=True)
    assert not report.complete and len(report.unexpected) == BLOCKS
    for block in range(1, BLOCKS + 1):
        for got, want in zip(plain.get_layer(f"block{block}_conv1").weights,
                             source.get_layer(f"block{block}_conv1").weights, strict=True):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "loaded partially" in warning and "block1_bn1" in warning


def test_a_file_without_batch_norm_leaves_the_model_batch_norms_unset(tmp_path):
    path = saved(tiny_vgg(False, seed=1), tmp_path)
    with_bn = tiny_vgg(True, seed=2)
    before = values(with_bn)
    with pytest.raises(WeightsMismatchError) as error:
        load_weights_file(with_bn, path, "the tiny backbone")
    message = str(error.value)
    assert_one_short_line(message)
    assert f"{BLOCKS} layers of the model not set (block1_bn1, block2_bn1, block3_bn1, ... " \
           "2 more)" in message
    assert_unchanged(with_bn, before)
    # partial=True: the convs load, the BatchNorms keep their values.
    load_weights_file(with_bn, path, "the tiny backbone", partial=True)
    bn = with_bn.get_layer("block1_bn1")
    for variable in bn.weights:
        np.testing.assert_array_equal(variable.numpy(), before[variable.path])


def test_other_shapes_are_named_with_both_shapes_and_nothing_is_assigned(tmp_path):
    path = saved(tiny_vgg(True, seed=1, filters=4), tmp_path)
    wider = tiny_vgg(True, seed=2, filters=6)
    before = values(wider)
    with pytest.raises(WeightsMismatchError) as error:
        load_weights_file(wider, path, "the tiny backbone", partial=True)
    message = str(error.value)
    assert_one_short_line(message)
    assert "does not fit the tiny backbone at all" in message  # partial cannot help
    assert "block1_conv1: kernel is (3, 3, 3, 6) here, (3, 3, 3, 4) in the file" in message
    assert "--partial_weights" not in message
    assert_unchanged(wider, before)


def test_frozen_batch_norm_file_loads_into_torch_batch_norm(tmp_path):
    # Keras 3 files name layers by class ("frozen_batch_normalization_3"); loading by
    # name lets a --backbone_bn=frozen file feed a --backbone_bn=batch_stats backbone.
    source = tiny_vgg(True, seed=1, bn_class=FrozenBatchNormalization)
    target = tiny_vgg(True, seed=2, bn_class=TorchBatchNormalization)
    assert load_weights_file(target, saved(source, tmp_path), "the tiny backbone").complete
    for want, got in zip(source.weights, target.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), want.path)


def test_keras2_h5_layout_loads_by_name_and_reports_extra_layers(tmp_path):
    source = tiny_vgg(True, seed=1)
    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, source)
    target = tiny_vgg(True, seed=2)
    assert load_weights_file(target, str(path), "the tiny backbone").complete
    for want, got in zip(source.weights, target.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), want.path)
    with pytest.raises(WeightsMismatchError, match="5 layers of the file unused"):
        load_weights_file(tiny_vgg(False, seed=3), str(path), "the tiny backbone")


def test_keras2_h5_file_under_other_layer_names_loads_by_order_as_keras_does(tmp_path):
    # Keras reads a Keras 2 file by the order of its layers; a file written under older
    # layer names (e.g. Keras' first ResNet50 files: "res2a_branch2a") must still load.
    source = tiny_vgg(True, seed=1, prefix="old_")
    path = tmp_path / "renamed.h5"
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, source)
    target = tiny_vgg(True, seed=2)
    report = load_weights_file(target, str(path), "the tiny backbone")
    assert report.by_order and report.complete and "by order" in report.summary()
    for want, got in zip(source.weights, target.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    # By order only when every layer fits so: a plain model does not take the BN file.
    with pytest.raises(WeightsMismatchError, match="does not fit the tiny backbone at all"):
        load_weights_file(tiny_vgg(False, seed=3), str(path), "the tiny backbone")


def strip_layer_names(path):
    """Removes the layer names a Keras 3 file records: a file as older Keras 3 wrote it."""
    with h5py.File(path, "r+") as file:
        def strip(_, item):
            if isinstance(item, h5py.Group) and "name" in item.attrs:
                del item.attrs["name"]
        file.visititems(strip)


def test_keras3_file_without_layer_names_matches_as_keras_does(tmp_path):
    source = tiny_vgg(True, seed=1, bn_class=FrozenBatchNormalization)
    path = saved(source, tmp_path)
    strip_layer_names(path)
    target = tiny_vgg(True, seed=2, bn_class=FrozenBatchNormalization)
    assert load_weights_file(target, path, "the tiny backbone").complete
    for want, got in zip(source.weights, target.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), want.path)
    # Its unused layers are named by their group, and still refused.
    with pytest.raises(WeightsMismatchError) as error:
        load_weights_file(tiny_vgg(False, seed=3), path, "the tiny backbone")
    assert "5 layers of the file unused (layers/frozen_batch_normalization, " \
        "layers/frozen_batch_normalization_1, layers/frozen_batch_normalization_2, ... 2 more)" \
        in str(error.value)


def test_nested_models_match_by_layer_path(tmp_path):
    inner = tiny_vgg(True, seed=1, name="inner_backbone")
    inputs = keras.Input((None, None, 3))
    outer = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(inner(inputs)),
                        name="outer")
    path = saved(outer, tmp_path)
    fresh_inner = tiny_vgg(True, seed=2, name="inner_backbone")
    fresh = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(fresh_inner(inputs)))
    report = load_weights_file(fresh, path, "the outer model")
    assert report.complete and "inner_backbone/block1_bn1" in report.loaded and "head" in \
        report.loaded
    for want, got in zip(outer.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), want.path)
    # The inner backbone's own file does not fit the outer model, and says where it differs.
    with pytest.raises(WeightsMismatchError, match=r"inner_backbone/block1_conv1, \.\.\."):
        load_weights_file(fresh, saved(inner, tmp_path, "inner.weights.h5"), "the outer model")


def test_a_truncated_file_is_one_line_naming_it(tmp_path):
    path = saved(tiny_vgg(True, seed=1), tmp_path)
    data = open(path, "rb").read()
    with open(path, "wb") as file:
        file.write(data[:len(data) // 2])
    with pytest.raises(ValueError) as error:
        load_weights_file(tiny_vgg(True, seed=2), path, "the tiny backbone")
    message = str(error.value)
    assert_one_short_line(message)
    assert message.startswith(f"weights={path!r} cannot be read as a Keras weights file")
    assert "truncated" in message


def test_an_hdf5_file_without_keras_weights_is_refused(tmp_path):
    path = tmp_path / "other.weights.h5"
    with h5py.File(path, "w") as file:
        file["data"] = np.zeros(3)
    with pytest.raises(ValueError, match="holds no Keras weights"):
        load_weights_file(tiny_vgg(True, seed=2), str(path), "the tiny backbone")


# The real backbones, as `--weights` meets them.


@pytest.fixture(scope="module")
def vgg16_bn_file(tmp_path_factory):
    backbone = build_backbone("vgg16", batch_norm=True)
    rng = np.random.default_rng(3)
    for variable in backbone.weights:
        variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(np.float32))
    path = str(tmp_path_factory.mktemp("weights") / "vgg16_bn.weights.h5")
    backbone.save_weights(path)
    return path, {v.path: v.numpy() for v in backbone.weights}


def test_vgg16_bn_file_into_plain_vgg16_is_one_short_error(vgg16_bn_file):
    path, _ = vgg16_bn_file
    with pytest.raises(ValueError) as error:
        build_backbone("vgg16", weights=path)
    message = str(error.value)
    assert_one_short_line(message)
    assert "13 layers of the file unused (block1_bn1, block1_bn2, block2_bn1, ... 10 more)" \
        in message
    assert "--vgg_batch_norm" in message and "--partial_weights" in message


def test_vgg16_bn_file_with_partial_weights_loads_the_convs(vgg16_bn_file):
    path, arrays = vgg16_bn_file
    plain = build_backbone("vgg16", weights=path, partial_weights=True)
    np.testing.assert_array_equal(plain.get_layer("block5_conv3").kernel.numpy(),
                                  arrays["block5_conv3/kernel"])


def test_vgg16_bn_file_into_batch_stats_vgg16_bn_loads_every_variable(vgg16_bn_file):
    path, arrays = vgg16_bn_file
    backbone = build_backbone("vgg16", batch_norm=True, backbone_bn="batch_stats", weights=path)
    assert {v.path for v in backbone.weights} == set(arrays)
    for variable in backbone.weights:
        np.testing.assert_array_equal(variable.numpy(), arrays[variable.path], variable.path)


@pytest.mark.parametrize("task_name", ["FewShotTask", "BaseLearnerTask"])
def test_tasks_thread_partial_weights_to_the_model_builder(monkeypatch, tmp_path, task_name):
    from svf_tf.tasks import base_learner, few_shot
    from tests.runs.trainer_helpers import tiny_config

    module, builder, extra = {
        "FewShotTask": (few_shot, "build_fsss_model", {}),
        "BaseLearnerTask": (base_learner, "build_stage1_model", {"method": "bam"}),
    }[task_name]
    seen = {}

    def fake_build(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(module, builder, fake_build)
    for partial in (False, True):
        config = tiny_config(str(tmp_path / "cache"), tmp_path / f"w{partial}",
                             partial_weights=partial, **extra)
        with pytest.raises(RuntimeError, match="stop here"):
            getattr(module, task_name)(config, log=lambda *_: None).build_model()
        assert seen["partial_weights"] is partial


def test_build_fsss_model_gives_partial_weights_to_both_bam_backbones(monkeypatch):
    from svf_tf.models import build_model as build_model_module
    from tests.models.fake_backbone import fake_backbone

    calls = []

    def recording_build_backbone(name, weights=None, *, model_name=None, **options):
        calls.append(options["partial_weights"])
        mode = "svf" if options["finetune"] == "svf" else "freeze"
        return fake_backbone("resnet", mode, name=model_name or f"{name}_backbone")

    monkeypatch.setattr(build_model_module, "build_backbone", recording_build_backbone)
    build_model_module.build_fsss_model("bam", "vgg16", 1, weights="w.h5", finetune="svf",
                                        image_size=(33, 33), partial_weights=True)
    assert calls == [True, True]


def test_stage1_model_threads_partial_weights(vgg16_bn_file):
    from svf_tf.weights.base_learner import build_stage1_model

    path, arrays = vgg16_bn_file
    with pytest.raises(ValueError, match="--partial_weights"):
        build_stage1_model("vgg16", 16, weights=path, backbone_options={"batch_norm": False})
    model = build_stage1_model("vgg16", 16, weights=path, partial_weights=True,
                               backbone_options={"batch_norm": False})
    np.testing.assert_array_equal(
        model.get_layer("vgg16_backbone").get_layer("block1_conv1").kernel.numpy(),
        arrays["block1_conv1/kernel"])
