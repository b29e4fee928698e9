"""Singular-value change of a tiny SVF model whose S is set by hand; its charts as PNGs."""

import json

import keras
import matplotlib.image
import numpy as np
import pytest

from svf_tf.analysis.singular_value_change import singular_value_change
from svf_tf.analysis.singular_value_figures import plot_layer_change
from svf_tf.analysis.svf_figures import chosen_layers, write_singular_value_figures
from svf_tf.analysis.svf_layers import singular_values, svf_layer_infos
from svf_tf.surgery import apply_svf


def tiny_svf_model():
    """Two convs named as Keras' ResNet50 names layer3's (conv4_*): a 3x3 and a 1x1."""
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv4_block1_2_conv")(inputs)
    x = keras.layers.Conv2D(3, 1, name="conv4_block1_3_conv")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    for layer in model.layers[1:]:
        layer.kernel.assign(rng.standard_normal(layer.kernel.shape).astype("float32"))
    kernels = {layer.name: np.asarray(layer.kernel) for layer in model.layers[1:]}
    return apply_svf(model), kernels


def test_change_holds_the_hand_set_values_against_numpy_svd(tmp_path):
    model, kernels = tiny_svf_model()
    infos = svf_layer_infos(model)
    assert [(i.path, i.stage, i.kind) for i in infos] == [
        ("conv4_block1_2_conv", 3, "3x3"), ("conv4_block1_3_conv", 3, "1x1")]
    initial = singular_values(infos)
    # Independent reference: NumPy's SVD of the folded kernels.
    for name, kernel in kernels.items():
        expected = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)
        np.testing.assert_allclose(initial[name], expected, rtol=1e-5)
    hand = {"conv4_block1_2_conv": [5.0, 4.0, 3.0, 2.0], "conv4_block1_3_conv": [1.0, 2.0, 0.5]}
    for info in infos:
        info.layer.svf_s.assign(np.asarray(hand[info.path], np.float32))
    change = singular_value_change(infos, initial, singular_values(infos), top=2)
    written = write_singular_value_figures(change, chosen_layers(infos, ()), 3, str(tmp_path))
    data = json.loads((tmp_path / "singular_values.json").read_text())
    for record in data["layers"]:
        s0 = np.linalg.svd(kernels[record["path"]].reshape(
            -1, kernels[record["path"]].shape[-1]), compute_uv=False)
        s = np.asarray(hand[record["path"]])
        assert record["index"] == [0, 1] and record["rank"] == len(s)
        np.testing.assert_allclose(record["initial"], s0[:2], rtol=1e-5)
        assert record["final"] == s[:2].tolist()  # exactly what was set
        np.testing.assert_allclose(record["change"], s[:2] - s0[:2], rtol=1e-5)
        np.testing.assert_allclose(record["relative_change"], (s[:2] - s0[:2]) / s0[:2],
                                   rtol=1e-5)
        np.testing.assert_allclose(record["max_abs_relative_change"],
                                   np.max(np.abs(s / s0 - 1)), rtol=1e-5)
    names = sorted(path.rsplit("/", 1)[-1] for path in written)
    assert names == ["singular_values.json", "sv_conv4_block1_2_conv.png",
                     "sv_conv4_block1_3_conv.png", "sv_grid_layer3_1x1.png",
                     "sv_grid_layer3_3x3.png", "sv_overview.png"]
    for path in written[1:]:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.std() > 0
    assert matplotlib.image.imread(str(tmp_path / "sv_conv4_block1_2_conv.png")).shape[:2] \
        == (500, 800)


def test_chart_draws_the_record():
    record = {"path": "b/conv4_block6_2_conv", "stage": 3, "kind": "3x3", "rank": 3,
              "index": [0, 1, 2], "initial": [3.0, 2.0, 1.0], "final": [3.5, 1.0, 1.0],
              "change": [0.5, -1.0, 0.0]}
    figure = plot_layer_change(record, "/dev/null")
    top, bottom = figure.axes
    np.testing.assert_allclose([p.get_height() for p in top.patches], [3.0, 2.0, 1.0])
    np.testing.assert_allclose(top.get_lines()[0].get_ydata(), [3.5, 1.0, 1.0])
    np.testing.assert_allclose([p.get_height() for p in bottom.patches], [0.5, -1.0, 0.0])


def test_unknown_layer_lists_the_valid_ones():
    model, _ = tiny_svf_model()
    with pytest.raises(ValueError) as error:
        chosen_layers(svf_layer_infos(model), ("conv9",))
    message = str(error.value)
    assert "\n" not in message and "'conv9' is not an SVF layer" in message
    assert "conv4_block1_2_conv, conv4_block1_3_conv" in message
