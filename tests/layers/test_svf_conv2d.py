"""SVFConv2D against the plain Conv2D it replaces and NumPy's SVD."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.ops import convert_to_numpy

from svf_tf import SVFConv2D, SVFDense
from svf_tf.layers import svf_factorization
from tests.helpers import relative_error, run_layer_test, tensorflow_only

CONV_CASES = {
    "1x1": dict(filters=32, kernel_size=1, channels=16),
    "3x3": dict(filters=24, kernel_size=3, channels=16, padding="same"),
    "7x7_stride2": dict(filters=16, kernel_size=7, channels=3, strides=2, padding="same"),
    "3x3_valid_stride2": dict(filters=8, kernel_size=3, channels=12, strides=2),
    "3x3_dilated": dict(filters=20, kernel_size=3, channels=8, dilation_rate=2, padding="same"),
    "rgb_first_conv": dict(filters=64, kernel_size=3, channels=3, padding="same"),
    "no_bias": dict(filters=16, kernel_size=3, channels=8, use_bias=False),
    "wide_1x1": dict(filters=8, kernel_size=1, channels=64),
    "relu": dict(filters=8, kernel_size=3, channels=4, activation="relu"),
}


def make_conv(filters, kernel_size, channels, **kwargs):
    conv = keras.layers.Conv2D(filters, kernel_size, bias_initializer="random_normal", **kwargs)
    conv.build((None, 17, 17, channels))
    return conv


def inputs_for(conv, size=17, batch=2):
    channels = conv.kernel.shape[-2] * conv.groups
    return np.random.default_rng(0).normal(size=(batch, size, size, channels)).astype("float32")


@pytest.mark.parametrize("compute", ["kernel", "factored"])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_untouched_layer_reproduces_plain_conv(case, compute):
    spec = dict(CONV_CASES[case])
    conv = make_conv(spec.pop("filters"), spec.pop("kernel_size"), spec.pop("channels"), **spec)
    svf = SVFConv2D.from_conv(conv, compute=compute)
    x = inputs_for(conv)
    assert relative_error(svf(x), conv(x)) < 1e-5
    assert svf.svf_rank == min(np.prod(conv.kernel.shape[:-1]), conv.filters)


def test_grouped_conv_defaults_to_kernel_mode():
    conv = make_conv(16, 3, 8, groups=4, padding="same")
    svf = SVFConv2D.from_conv(conv)
    assert svf.compute == "kernel"
    x = inputs_for(conv)
    assert relative_error(svf(x), conv(x)) < 1e-5


def test_default_compute_is_factored_and_stored_resolved():
    svf = SVFConv2D.from_conv(make_conv(8, 3, 4))
    assert svf.compute == "factored" and svf.get_config()["compute"] == "factored"


def test_singular_values_match_numpy_in_both_folds():
    conv = make_conv(24, 3, 16)
    svf = SVFConv2D.from_conv(conv)
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    keras_fold = kernel.reshape(-1, 24)
    # PyTorch folds OIHW to (Co, Ci*K*K): the singular values must be the same.
    torch_fold = kernel.transpose(3, 2, 0, 1).reshape(24, -1)
    for folded in (keras_fold, torch_fold):
        expected = np.linalg.svd(folded.astype(np.float64), compute_uv=False)
        np.testing.assert_allclose(svf.svf_s.numpy(), expected, rtol=1e-5)


def test_trained_singular_values_give_numpy_composed_kernel():
    conv = make_conv(12, 3, 6, padding="same")
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype(np.float64)
    left, s, right_t = np.linalg.svd(kernel.reshape(-1, 12), full_matrices=False)
    new_s = s * np.linspace(0.5, 2.0, s.size)
    reference = make_conv(12, 3, 6, padding="same")
    reference.kernel.assign((left * new_s @ right_t).reshape(kernel.shape).astype(np.float32))
    reference.bias.assign(conv.bias)
    x = inputs_for(conv)
    for compute in ("kernel", "factored"):
        svf = SVFConv2D.from_conv(conv, compute=compute)
        svf.svf_s.assign(new_s.astype(np.float32))
        assert relative_error(svf(x), reference(x)) < 1e-5


def test_exp_parametrization_starts_at_zero_and_scales():
    conv = make_conv(8, 3, 4, padding="same")
    svf = SVFConv2D.from_conv(conv, parametrization="exp")
    np.testing.assert_array_equal(svf.svf_s_prime.numpy(), 0.0)
    assert [v.name for v in svf.trainable_variables] == ["svf_s_prime"]
    svf.svf_s_prime.assign(np.full(svf.svf_rank, np.log(2.0), np.float32))
    doubled = make_conv(8, 3, 4, padding="same", use_bias=False)
    doubled.kernel.assign(2.0 * conv.kernel)
    x = inputs_for(conv)
    expected = doubled(x) + conv.bias
    assert relative_error(svf(x), expected) < 1e-5


def test_rank_multiple_four_truncates_rgb_conv_like_reference():
    conv = make_conv(64, 3, 3, padding="same")
    svf = SVFConv2D.from_conv(conv, rank_multiple=4)
    assert svf.svf_rank == 24
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype(np.float64)
    left, s, right_t = np.linalg.svd(kernel.reshape(27, 64), full_matrices=False)
    truncated = make_conv(64, 3, 3, padding="same")
    truncated.kernel.assign((left[:, :24] * s[:24] @ right_t[:24]).reshape(kernel.shape)
                            .astype(np.float32))
    truncated.bias.assign(conv.bias)
    x = inputs_for(conv)
    assert relative_error(svf(x), truncated(x)) < 1e-5
    assert relative_error(svf(x), conv(x)) > 1e-4  # it really is an approximation


ALL_SUBSETS = [c for n in (1, 2, 3) for c in itertools.combinations("USV", n)]


@tensorflow_only
@pytest.mark.parametrize("parametrization", ["direct", "exp"])
@pytest.mark.parametrize("compute", ["kernel", "factored"])
@pytest.mark.parametrize("factors", ALL_SUBSETS, ids="".join)
def test_training_step_changes_only_trainable_factors(factors, compute, parametrization):
    conv = make_conv(8, 3, 4, padding="same")
    svf = SVFConv2D.from_conv(conv, trainable_factors=factors, compute=compute,
                              parametrization=parametrization)
    names = {"U": "svf_u", "S": "svf_s" if parametrization == "direct" else "svf_s_prime",
             "V": "svf_v"}
    assert sorted(v.name for v in svf.trainable_variables) == sorted(names[f] for f in factors)
    before = {v.name: v.numpy().copy() for v in svf.weights}
    x = inputs_for(conv)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(svf(x)))
    grads = tape.gradient(loss, svf.trainable_variables)
    keras.optimizers.SGD(0.01).apply_gradients(zip(grads, svf.trainable_variables, strict=True))
    for v in svf.weights:
        if v.name in {names[f] for f in factors}:
            assert not np.array_equal(v.numpy(), before[v.name]), v.name
        else:
            np.testing.assert_array_equal(v.numpy(), before[v.name], err_msg=v.name)


def test_trainable_flag_never_unfreezes_u_v_or_bias():
    svf = SVFConv2D.from_conv(make_conv(8, 3, 4))
    svf.trainable = False
    assert svf.trainable_variables == []
    svf.trainable = True
    assert [v.name for v in svf.trainable_variables] == ["svf_s"]


def test_from_conv_is_trainable_even_if_source_was_frozen():
    conv = make_conv(8, 3, 4)
    conv.trainable = False
    assert [v.name for v in SVFConv2D.from_conv(conv).trainable_variables] == ["svf_s"]


@tensorflow_only
@pytest.mark.parametrize("compute", ["kernel", "factored"])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_factors_float32(policy, compute):
    keras.mixed_precision.set_global_policy(policy)
    conv = make_conv(16, 3, 8, padding="same")
    svf = SVFConv2D.from_conv(conv, compute=compute)
    x = inputs_for(conv)
    compute_dtype = policy.split("_")[1]
    assert all(v.dtype == "float32" for v in svf.weights)
    with tf.GradientTape() as tape:
        y = svf(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    assert y.dtype == compute_dtype
    (grad,) = tape.gradient(loss, svf.trainable_variables)
    assert grad.dtype == tf.float32 and np.all(np.isfinite(grad.numpy()))
    keras.mixed_precision.set_global_policy("float32")
    plain = make_conv(16, 3, 8, padding="same")
    plain.set_weights([w.numpy() for w in conv.weights])
    assert relative_error(tf.cast(y, tf.float32), plain(x)) < 2e-2


SVF_LAYER_CASES = {
    # Conv2D(8, 3) on 4 channels: the folded kernel is (36, 8), rank 8. The
    # bias (8) and the fingerprint stay frozen with U (8x8) and V (36x8).
    "direct": (dict(padding="same"), dict(), (2, 17, 17, 8), 1, 4,
               (8, 8 * 8 + 36 * 8 + svf_factorization.FINGERPRINT_SIZE + 8)),
    # Stride 2, valid: 17 -> 8. S' (8) and V (36x8) train; U, S0, fingerprint, bias do not.
    "exp_sv_strided": (dict(strides=2),
                       dict(trainable_factors=("S", "V"), parametrization="exp",
                            rank_multiple=4, compute="factored"),
                       (2, 8, 8, 8), 2, 4,
                       (8 + 36 * 8, 8 * 8 + 8 + svf_factorization.FINGERPRINT_SIZE + 8)),
}


@pytest.mark.parametrize("case", sorted(SVF_LAYER_CASES))
def test_layer_harness(case):
    conv_options, svf_options, output_shape, trainable, frozen, params = SVF_LAYER_CASES[case]

    def factory():
        svf = SVFConv2D.from_conv(make_conv(8, 3, 4, **conv_options), **svf_options)
        trained = svf.svf_s if svf.parametrization == "direct" else svf.svf_s_prime
        # Trained values, so that the file must carry them (not the SVD of a kernel).
        trained.assign(trained.numpy() + np.linspace(-0.3, 0.3, svf.svf_rank, dtype=np.float32))
        return svf

    svf, _ = run_layer_test(factory, (2, 17, 17, 4), expected_trainable=trainable,
                            expected_non_trainable=frozen, expected_params=params,
                            expected_output_shapes=output_shape)
    config = svf.get_config()
    assert config["trainable_factors"] == list(svf_options.get("trainable_factors", ["S"]))
    assert config["rank_multiple"] == svf_options.get("rank_multiple", 1)
    assert config["compute"] == "factored"


def test_keras_file_loads_without_any_svd(tmp_path, monkeypatch):
    # Issue 2: all state is made in build(), so loading recomputes nothing. Keras
    # calls build_from_config before load_own_variables; an SVD there is wasted.
    conv = make_conv(8, 3, 4, padding="same")
    inputs = keras.Input((17, 17, 4))
    h = SVFConv2D.from_conv(conv, parametrization="exp")(inputs)
    dense = keras.layers.Dense(3)
    dense.build((None, 8))
    model = keras.Model(inputs, SVFDense.from_dense(dense)(h))
    model.save(tmp_path / "m.keras")
    calls = []
    original = svf_factorization.decompose
    monkeypatch.setattr(svf_factorization, "decompose",
                        lambda *args: calls.append(args) or original(*args))
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert calls == []
    for a, b in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=b.path)
    x = inputs_for(conv)
    np.testing.assert_array_equal(convert_to_numpy(loaded(x)), convert_to_numpy(model(x)))


def test_from_conv_rejects_unbuilt_layer():
    with pytest.raises(ValueError, match="needs a built Conv2D, but 'late' is not built"):
        SVFConv2D.from_conv(keras.layers.Conv2D(4, 3, name="late"))


@pytest.mark.parametrize("options, message", [
    (dict(trainable_factors=()), r"trainable_factors=\(\).*non-empty subset"),
    (dict(trainable_factors=("S", "W")), r"trainable_factors=\('S', 'W'\)"),
    (dict(parametrization="log"), r"parametrization='log'.*'direct'.*'exp'"),
    (dict(compute="fast"), r"compute='fast'.*'kernel'.*'factored'"),
    (dict(rank_multiple=0), r"rank_multiple=0.*positive integer"),
    (dict(compute="factored", groups=2), r"groups=1 \(got groups=2\)"),
    (dict(kernel_regularizer="l2"), r"kernel_regularizer=.*cannot be used with SVF"),
])
def test_bad_options_raise_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        SVFConv2D(8, 3, **options)
