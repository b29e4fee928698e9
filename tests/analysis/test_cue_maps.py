"""Cue maps of a hand-made layer: each U direction is hot where its channel was painted."""

import keras
import matplotlib.image
import numpy as np

from svf_tf.analysis import cue_maps
from svf_tf.analysis.singular_value_change import growth_and_reduction, singular_value_change
from svf_tf.analysis.svf_layers import singular_values, svf_layer_infos
from svf_tf.surgery import apply_svf

SIZE = 16


def hand_made_model():
    """A 1x1 conv with kernel diag(3, 2, 1) and a bias: u_k = v_k = e_k, S = (3, 2, 1)."""
    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(3, 1, name="conv4_block6_3_conv")
    model = keras.Model(inputs, conv(inputs))
    conv.kernel.assign(np.diag([3.0, 2.0, 1.0]).reshape(1, 1, 3, 3).astype("float32"))
    conv.bias.assign(np.asarray([0.5, -0.25, 2.0], np.float32))
    return apply_svf(model)


def painted_image():
    """Channel 0 in the top-left quadrant, 1 bottom-right, 2 bottom-left; zero elsewhere."""
    image = np.zeros((1, SIZE, SIZE, 3), np.float32)
    half = SIZE // 2
    image[0, :half, :half, 0] = 1.0
    image[0, half:, half:, 1] = 1.0
    image[0, half:, :half, 2] = 1.0
    return image


def hot_quadrant(heat):
    half = SIZE // 2
    quadrants = {"top-left": heat[:half, :half], "top-right": heat[:half, half:],
                 "bottom-left": heat[half:, :half], "bottom-right": heat[half:, half:]}
    return max(quadrants, key=lambda name: quadrants[name].mean())


def test_growth_and_reduction_directions_are_hot_where_they_were_put(tmp_path):
    model = hand_made_model()
    infos = svf_layer_infos(model)
    initial = singular_values(infos)
    np.testing.assert_allclose(initial["conv4_block6_3_conv"], [3.0, 2.0, 1.0], rtol=1e-6)
    # By hand: direction 2 (channel 2) grows most, direction 1 (channel 1) shrinks most.
    infos[0].layer.svf_s.assign(np.asarray([3.0, 1.0, 1.5], np.float32))
    record = singular_value_change(infos, initial, singular_values(infos))["layers"][0]
    growth, reduction = growth_and_reduction(record)
    assert (growth, reduction) == (2, 1)
    image = painted_image()
    responses, maps = cue_maps.compute_cue_maps(model, infos[0], image, [reduction, growth])
    # c_k = S_k * (v_k . x): NumPy on the painted channels, bias removed, trained S.
    np.testing.assert_allclose(np.abs(responses[0, ..., 0]), 1.0 * image[0, ..., 1], atol=1e-5)
    np.testing.assert_allclose(np.abs(responses[0, ..., 1]), 1.5 * image[0, ..., 2], atol=1e-5)
    assert hot_quadrant(maps[0, ..., 0]) == "bottom-right"  # reduction: channel 1
    assert hot_quadrant(maps[0, ..., 1]) == "bottom-left"  # growth: channel 2
    assert maps.max() <= 1.0 + 1e-6
    path = tmp_path / "cues.png"
    labels = cue_maps.direction_labels(record, growth, reduction)
    assert labels[0].startswith("(a) largest reduction: u_1")
    assert labels[1] == "(b) largest growth: u_2\nS 1 -> 1.5 (+50%)"
    figure = cue_maps.plot_cue_maps(np.clip(image, 0, 1), maps, labels, "test", str(path))
    width, height = figure.get_size_inches()
    assert matplotlib.image.imread(str(path)).shape[:2] == (round(height * 100),
                                                            round(width * 100))
