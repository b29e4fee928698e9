"""Every SVF option is checked first and refused in one short ValueError.

For the layer constructors, `SVFConv2D.from_conv` / `SVFDense.from_dense` and
`apply_svf`. The `from_*` methods go through Keras' `from_config`, which wraps
any constructor error in a TypeError that starts with the whole layer config;
these tests pin that a bad option never reaches it.
"""

import keras
import pytest

from svf_tf import SVFConv2D, SVFDense, apply_svf
from svf_tf.layers.svf_factorization import SVF_OPTIONS

# (options, words the message must contain: the option, the bad value, what is accepted).
BAD_OPTIONS = [
    (dict(trainable_factors=()), ["trainable_factors=()", "non-empty subset", "'U', 'S', 'V'"]),
    (dict(trainable_factors=None), ["trainable_factors=None", "non-empty subset"]),
    (dict(trainable_factors=("S", "W")), ["trainable_factors=('S', 'W')", "'U', 'S', 'V'"]),
    (dict(trainable_factors="SW"), ["trainable_factors='SW'", "'U', 'S', 'V'"]),
    (dict(trainable_factors=1), ["trainable_factors=1", "non-empty subset"]),
    (dict(parametrization="log"), ["parametrization='log'", "'direct'", "'exp'"]),
    (dict(parametrization=None), ["parametrization=None", "'direct'", "'exp'"]),
    (dict(rank_multiple=0), ["rank_multiple=0", "positive integer"]),
    (dict(rank_multiple=-4), ["rank_multiple=-4", "positive integer"]),
    (dict(rank_multiple=2.0), ["rank_multiple=2.0", "positive integer"]),
    (dict(rank_multiple=True), ["rank_multiple=True", "positive integer"]),
    (dict(compute="fast"), ["compute='fast'", "'kernel'", "'factored'"]),
]


def built_conv(**kwargs):
    conv = keras.layers.Conv2D(8, 3, **kwargs)
    conv.build((None, 9, 9, 4))
    return conv


def built_dense(**kwargs):
    dense = keras.layers.Dense(6, **kwargs)
    dense.build((None, 5))
    return dense


def small_model():
    inputs = keras.Input((9, 9, 4))
    return keras.Model(inputs, keras.layers.Conv2D(8, 3, name="conv")(inputs))


MAKERS = {
    "apply_svf": lambda **options: apply_svf(small_model(), **options),
    "SVFConv2D.from_conv": lambda **options: SVFConv2D.from_conv(built_conv(), **options),
    "SVFConv2D": lambda **options: SVFConv2D(8, 3, **options),
    "SVFDense.from_dense": lambda **options: SVFDense.from_dense(built_dense(), **options),
    "SVFDense": lambda **options: SVFDense(6, **options),
}


def assert_one_short_line(error, words):
    message = str(error.value)
    assert "\n" not in message and len(message) < 300, message
    assert "config=" not in message and "deserializ" not in message, message
    for word in words:
        assert word in message, (word, message)


def test_the_checked_options_are_the_constants_svf_options():
    # One row per option above: a new option in DEFAULTS needs its own bad values here.
    assert set(SVF_OPTIONS) == {name for options, _ in BAD_OPTIONS for name in options}


@pytest.mark.parametrize("maker", sorted(MAKERS))
@pytest.mark.parametrize("options, words", BAD_OPTIONS, ids=lambda v: repr(v)[:40])
def test_bad_option_is_one_value_error(maker, options, words):
    with pytest.raises(ValueError) as error:
        MAKERS[maker](**options)
    assert_one_short_line(error, words)


@pytest.mark.parametrize("maker", ["apply_svf", "SVFConv2D.from_conv", "SVFDense.from_dense"])
def test_unknown_option_is_named_with_the_accepted_ones(maker):
    with pytest.raises(ValueError) as error:
        MAKERS[maker](rank=4)
    assert_one_short_line(error, [maker, "['rank']", "trainable_factors", "parametrization",
                                  "rank_multiple", "compute"])


def test_options_are_checked_before_the_source_layer():
    # A bad option is reported even when the source layer is also unusable.
    with pytest.raises(ValueError, match="parametrization='log'"):
        SVFConv2D.from_conv(keras.layers.Conv2D(4, 3), parametrization="log")
    with pytest.raises(ValueError, match="parametrization='log'"):
        SVFDense.from_dense(keras.layers.Dense(4), parametrization="log")


def test_factored_compute_on_a_grouped_conv_is_one_line():
    conv = keras.layers.Conv2D(8, 3, groups=2)
    conv.build((None, 9, 9, 4))
    with pytest.raises(ValueError) as error:
        SVFConv2D.from_conv(conv, compute="factored")
    assert_one_short_line(error, ["compute='factored'", "groups=2", "compute='kernel'"])


@pytest.mark.parametrize("maker, source", [
    (SVFConv2D.from_conv, lambda: built_conv(kernel_regularizer="l2")),
    (SVFDense.from_dense, lambda: built_dense(kernel_constraint="non_neg")),
])
def test_source_kernel_regularizer_or_constraint_is_one_line(maker, source):
    with pytest.raises(ValueError) as error:
        maker(source())
    assert_one_short_line(error, ["cannot be used with SVF"])


def test_good_options_still_work():
    conv = SVFConv2D.from_conv(built_conv(), trainable_factors="US", parametrization="exp",
                               rank_multiple=4, compute="kernel")
    assert conv.trainable_factors == ("U", "S") and conv.rank_multiple == 4
    dense = SVFDense.from_dense(built_dense(), trainable_factors=["V"])
    assert dense.trainable_factors == ("V",) and dense.compute == "factored"
