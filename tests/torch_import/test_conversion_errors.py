"""What the conversion refuses or reports: shapes, unplaced keys, unset variables, BN eps.

Most checks run on a two-layer Keras model whose layer names are VGG16-BN's
first conv and BN, with numpy state dicts, so they need neither PyTorch nor
a full network.
"""

import numpy as np
import pytest

from svf_tf.torch_import import IncompleteConversionError, convert_checkpoint, convert_state_dict


def first_vgg_block(bn_epsilon=1e-5):
    import keras
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="block1_conv1")(inputs)
    x = keras.layers.BatchNormalization(epsilon=bn_epsilon, name="block1_bn1")(x)
    return keras.Model(inputs, x, name="tiny_vgg")


def first_vgg_block_state(rng=None):
    rng = rng or np.random.default_rng(0)
    return {"features.0.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
            "features.0.bias": rng.normal(size=4).astype(np.float32),
            "features.1.weight": rng.uniform(0.5, 1, 4).astype(np.float32),
            "features.1.bias": rng.normal(size=4).astype(np.float32),
            "features.1.running_mean": rng.normal(size=4).astype(np.float32),
            "features.1.running_var": rng.uniform(0.5, 2, 4).astype(np.float32),
            "features.1.num_batches_tracked": np.array(10)}


def test_complete_conversion_of_the_tiny_model_matches_batch_norm_math():
    model = first_vgg_block()
    state = first_vgg_block_state()
    report = convert_state_dict(state, model, "vgg16_bn")
    assert report.complete and len(report.loaded) == 6
    x = np.random.default_rng(1).normal(size=(1, 5, 5, 3)).astype(np.float32)
    conv = model.get_layer("block1_conv1")(x)
    expected = (np.asarray(conv) - state["features.1.running_mean"]) / np.sqrt(
        state["features.1.running_var"] + 1e-5) * state["features.1.weight"] + \
        state["features.1.bias"]
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)


def test_shape_mismatch_names_key_shapes_and_variable_and_assigns_nothing():
    model = first_vgg_block()
    before = [w.numpy().copy() for w in model.weights]
    state = first_vgg_block_state()
    state["features.0.weight"] = np.zeros((4, 3, 5, 5), np.float32)
    with pytest.raises(ValueError) as error:
        convert_state_dict(state, model, "vgg16_bn")
    message = str(error.value)
    for part in ("'features.0.weight'", "(4, 3, 5, 5)", "'block1_conv1/kernel'", "(3, 3, 3, 4)"):
        assert part in message
    for old, weight in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, weight.numpy())


def test_wrong_rank_is_a_shape_mismatch_too():
    state = {"features.1.running_var": np.ones((4, 1), np.float32)}
    with pytest.raises(ValueError, match=r"'features.1.running_var' \(4, 1\).*moving_variance"):
        convert_state_dict(state, first_vgg_block(), "vgg16_bn")


def test_unplaced_tensors_and_unset_variables_are_listed():
    state = first_vgg_block_state()
    del state["features.1.running_var"]
    state["head.weight"] = np.zeros((2, 4), np.float32)      # no such layer
    state["features.3.weight"] = np.zeros((4, 4, 3, 3), np.float32)  # block1_conv2: not here
    report = convert_state_dict(state, first_vgg_block(), "vgg16_bn", source="x.pth")

    assert not report.complete
    unplaced = {t.torch_key: t.reason for t in report.unplaced}
    assert unplaced["head.weight"] == "no layer of a vgg16_bn model corresponds to this key"
    assert "has no Keras variable 'block1_conv2/kernel'" in unplaced["features.3.weight"]
    assert [v.keras_path for v in report.unset] == ["block1_bn1/moving_variance"]
    text = str(report)
    assert "UNPLACED (2)" in text and "KERAS VARIABLES NOT SET (1)" in text
    assert "features.1.num_batches_tracked" in text.split("SKIPPED")[1]
    assert "x.pth" in text.splitlines()[0]


def test_two_keys_for_one_variable_are_refused():
    state = first_vgg_block_state()
    state["layer0.0.weight"] = state["features.0.weight"]
    with pytest.raises(ValueError, match="'features.0.weight' and 'layer0.0.weight' both map"):
        convert_state_dict(state, first_vgg_block(), "vgg16_bn")


def test_batch_norm_epsilon_other_than_torchs_is_refused():
    with pytest.raises(ValueError, match=r"'block1_bn1' has epsilon 0.001.*1e-05"):
        convert_state_dict(first_vgg_block_state(), first_vgg_block(1e-3), "vgg16_bn")


def test_an_alias_that_differs_from_its_module_is_unplaced():
    state = {k.replace("features.", "layer0."): v for k, v in first_vgg_block_state().items()}
    state["encoder.0.0.bias"] = state["layer0.0.bias"]
    state["encoder.0.1.bias"] = state["layer0.1.bias"] + 1
    report = convert_state_dict(state, first_vgg_block(), "pspnet", backbone="vgg16")
    assert [t.torch_key for t in report.skipped if "registered twice" in t.reason] == [
        "encoder.0.0.bias"]
    assert [(t.torch_key, t.reason) for t in report.unplaced] == [
        ("encoder.0.1.bias", "should repeat layer0.1.bias, which is different")]


def test_svf_factors_are_merged_into_the_conv_weight():
    """A conv decomposed by the SVF code: conv_U (O,r,1,1), vector_S (1,r,1,1), conv_V (r,I,k,k)."""
    state = first_vgg_block_state()
    weight, bias = state.pop("features.0.weight"), state.pop("features.0.bias")
    u, s, vt = np.linalg.svd(weight.reshape(4, -1), full_matrices=False)
    state["features.0.conv_U.weight"] = u[:, :, None, None]
    state["features.0.conv_U.bias"] = bias
    state["features.0.vector_S"] = s.reshape(1, -1, 1, 1)
    state["features.0.conv_V.weight"] = vt.reshape(4, 3, 3, 3)
    model = first_vgg_block()

    report = convert_state_dict(state, model, "vgg16_bn")

    assert report.complete, report.problems()
    assert any("features.0.weight merged from the SVF factors" in n for n in report.notes)
    np.testing.assert_allclose(model.get_layer("block1_conv1").kernel.numpy(),
                               weight.transpose(2, 3, 1, 0), atol=1e-5)
    np.testing.assert_array_equal(model.get_layer("block1_conv1").bias.numpy(), bias)


def test_output_must_be_a_keras_weights_file(tmp_path):
    with pytest.raises(ValueError, match=r"must end in '.weights.h5'"):
        convert_checkpoint(tmp_path / "x.pth", "vgg16_bn", tmp_path / "x.h5")
    with pytest.raises(ValueError, match="backbone_output applies to model targets"):
        convert_checkpoint(tmp_path / "x.pth", "vgg16_bn", None,
                           backbone_output=tmp_path / "b.weights.h5")


@pytest.mark.torch
def test_incomplete_checkpoint_writes_nothing_unless_allowed(tmp_path):
    torch = pytest.importorskip("torch")
    from tests.torch_import.torch_reference import VGG16BN

    state = VGG16BN().state_dict()
    state["features.100.weight"] = torch.zeros(3)
    del state["features.41.running_mean"]
    checkpoint, output = tmp_path / "vgg16_bn.pth", tmp_path / "vgg.weights.h5"
    torch.save(state, checkpoint)

    with pytest.raises(IncompleteConversionError, match="features.100.weight") as error:
        convert_checkpoint(checkpoint, "vgg16_bn", output)
    assert [v.keras_path for v in error.value.report.unset] == ["block5_bn3/moving_mean"]
    assert not output.exists()
    with pytest.raises(IncompleteConversionError, match="block5_bn3/moving_mean"):
        convert_checkpoint(checkpoint, "vgg16_bn", output, allow_unplaced=True)
    report = convert_checkpoint(checkpoint, "vgg16_bn", output, allow_unplaced=True,
                                allow_unset=True)
    assert output.exists() and len(report.unplaced) == 1 and len(report.unset) == 1


def test_svf_code_bam_second_backbone_registration():
    """The SVF code's BAM registers the stage-1 backbone again as layer0p..layer4p.

    Without SVF they are the same modules as layer0..4 and are skipped; after
    SVF training they differ and are reported with what to do about them.
    """
    state = {k.replace("features.", "layer0."): v for k, v in first_vgg_block_state().items()}
    state.update({k.replace("layer0.", "layer0p."): v.copy() for k, v in list(state.items())})
    report = convert_state_dict(state, first_vgg_block(), "bam", backbone="vgg16")
    assert report.complete, report.problems()
    twice = {t.torch_key for t in report.skipped if "registered twice" in t.reason}
    assert twice == {k for k in state if k.startswith("layer0p.")}

    state["layer0.0.weight"] = state["layer0.0.weight"] * 1.5  # the SVF-tuned copy
    report = convert_state_dict(state, first_vgg_block(), "bam", backbone="vgg16")
    assert [t.torch_key for t in report.unplaced] == ["layer0p.0.weight"]
    reason = report.unplaced[0].reason
    assert reason.startswith("should repeat layer0.0.weight, which is different")
    assert "untouched stage-1 copy" in reason and "base_backbone" in reason
