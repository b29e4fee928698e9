"""PFENet's feature enrichment module."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.fem import FeatureEnrichment, bin_size, check_pyramid_bins
from tests.helpers import assert_config_round_trip

C = 256


def fem_inputs(size=5, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(size=(batch, size, size, C)).astype("float32"),
            rng.uniform(size=(batch, 1, 1, C)).astype("float32"),
            rng.uniform(size=(batch, size, size, 1)).astype("float32")]


def test_shapes_for_absolute_and_fractional_bins():
    fem = FeatureEnrichment([6, 3, 0.5, 1.0], name="fem")
    merged, *aux = fem(fem_inputs(size=9))
    assert merged.shape == (2, 9, 9, 4 * C)
    assert [a.shape[1:3] for a in aux] == [(6, 6), (3, 3), (4, 4), (9, 9)]
    assert all(a.shape[-1] == 2 for a in aux)


def test_single_full_size_bin_is_merge_plus_residual_and_classifier():
    """With one bin equal to the map size, pooling and resizing are identities."""
    fem = FeatureEnrichment([5], name="fem")
    query, prototype, prior = fem_inputs()
    merged, aux = fem([query, prototype, prior])
    x = tf.concat([query, tf.broadcast_to(prototype, (2, 5, 5, C)), prior], axis=-1)
    x = fem.init_merge[0](x)
    x = x + fem.beta_conv[1](fem.beta_conv[0](x))
    np.testing.assert_allclose(merged, x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(aux, fem.inner_cls[0](x), rtol=1e-4, atol=1e-5)


def test_second_bin_adds_alpha_of_previous_output():
    fem = FeatureEnrichment([5, 5], name="fem")
    query, prototype, prior = fem_inputs()
    merged = fem([query, prototype, prior])[0].numpy()
    x = tf.concat([query, tf.broadcast_to(prototype, (2, 5, 5, C)), prior], axis=-1)
    first = fem.init_merge[0](x)
    first = first + fem.beta_conv[1](fem.beta_conv[0](first))
    second = fem.init_merge[1](x)
    second = second + fem.alpha_conv[0](tf.concat([second, first], axis=-1))
    second = second + fem.beta_conv[3](fem.beta_conv[2](second))
    np.testing.assert_allclose(merged, tf.concat([first, second], -1), rtol=1e-4, atol=1e-5)


def test_bins_too_small_for_the_input_raise():
    fem = FeatureEnrichment([1.0, 0.125], name="fem")
    with pytest.raises(ValueError, match=r"pyramid bin 0.125 of the 5x5 .* too small"):
        fem(fem_inputs(size=5))


def test_bin_rules():
    assert check_pyramid_bins([60, 30, 15, 8]) == (60, 30, 15, 8)
    assert bin_size(0.125, 81, 81) == (10, 10)
    assert bin_size(8, 81, 60) == (8, 8)
    for bad in ([], [0], [1.5], "60", [True]):
        with pytest.raises(ValueError, match="pyramid_bins"):
            check_pyramid_bins(bad)


def test_config_and_keras_file(tmp_path):
    assert_config_round_trip(FeatureEnrichment([4, 0.5], name="fem"))
    ins = [keras.Input((None, None, C)), keras.Input((1, 1, C)), keras.Input((None, None, 1))]
    model = keras.Model(ins, FeatureEnrichment([4, 0.5], name="fem")(ins))
    x = fem_inputs(size=5, batch=1)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for a, b in zip(loaded(x), model(x), strict=True):
        np.testing.assert_array_equal(a, b)
