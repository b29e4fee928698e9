"""BroadcastLike: a [B, 1, 1, C] vector tiled over another tensor's grid."""

import keras
import numpy as np

from svf_tf.ops.broadcast_like import BroadcastLike
from tests.helpers import run_layer_test


def test_tiles_over_the_grid_and_passes_the_harness():
    vector = np.random.default_rng(3).normal(size=(2, 1, 1, 3)).astype("float32")
    like = np.zeros((2, 4, 5, 7), "float32")
    _, (out,) = run_layer_test(lambda: BroadcastLike(name="tile"), [vector, like],
                               expected_trainable=0, expected_non_trainable=0,
                               expected_output_shapes=(2, 4, 5, 3))
    np.testing.assert_array_equal(out, np.broadcast_to(vector, (2, 4, 5, 3)))


def test_grid_known_only_at_run_time_keeps_the_channels():
    ins = [keras.Input((1, 1, 3)), keras.Input((None, None, 7))]
    model = keras.Model(ins, BroadcastLike()(ins))
    assert model.output.shape == (None, None, None, 3)
    vector = np.ones((1, 1, 1, 3), "float32")
    assert model([vector, np.zeros((1, 6, 2, 7), "float32")]).shape == (1, 6, 2, 3)
