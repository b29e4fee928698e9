"""SVFDense against the plain Dense it replaces."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf import SVFDense
from svf_tf.layers import svf_factorization
from tests.helpers import relative_error, run_layer_test, tensorflow_only


def make_dense(units=6, fan_in=10, **kwargs):
    dense = keras.layers.Dense(units, bias_initializer="random_normal", **kwargs)
    dense.build((None, fan_in))
    return dense


X = np.random.default_rng(0).normal(size=(5, 10)).astype("float32")


@pytest.mark.parametrize("compute", ["kernel", "factored"])
@pytest.mark.parametrize("units", [3, 6, 16])
def test_untouched_layer_reproduces_plain_dense(units, compute):
    dense = make_dense(units)
    svf = SVFDense.from_dense(dense, compute=compute)
    assert relative_error(svf(X), dense(X)) < 1e-5
    assert svf.svf_rank == min(10, units)


def test_seeded_from_the_real_svd_not_random():
    # The reference SVD_Linear keeps random weights after decomposition; ours must not.
    dense = make_dense()
    svf = SVFDense.from_dense(dense)
    expected = np.linalg.svd(keras.ops.convert_to_numpy(dense.kernel).astype(np.float64),
                             compute_uv=False)
    np.testing.assert_allclose(svf.svf_s.numpy(), expected, rtol=1e-5)


def test_scaled_singular_values_match_numpy():
    dense = make_dense()
    kernel = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)
    left, s, right_t = np.linalg.svd(kernel, full_matrices=False)
    new_s = s * np.linspace(0.2, 3.0, s.size)
    expected = X @ (left * new_s @ right_t) + keras.ops.convert_to_numpy(dense.bias)
    for compute in ("kernel", "factored"):
        svf = SVFDense.from_dense(dense, compute=compute)
        svf.svf_s.assign(new_s.astype(np.float32))
        assert relative_error(svf(X), expected) < 1e-5


def test_layer_harness():
    def factory():
        svf = SVFDense.from_dense(make_dense(activation="relu"), parametrization="exp")
        svf.svf_s_prime.assign(np.full(svf.svf_rank, 0.1, np.float32))
        return svf

    # Dense(6) on 10 inputs: rank 6; s' (6) trains; U (6x6), S0 (6), V (10x6),
    # the fingerprint and the bias (6) are frozen.
    run_layer_test(factory, X, expected_trainable=1, expected_non_trainable=5,
                   expected_params=(6, 36 + 6 + 60 + svf_factorization.FINGERPRINT_SIZE + 6),
                   expected_output_shapes=(5, 6))


def test_rejects_unbuilt_and_quantized_layers():
    with pytest.raises(ValueError, match="needs a built Dense, but 'head' is not built"):
        SVFDense.from_dense(keras.layers.Dense(3, name="head"))
    dense = make_dense()
    dense.quantize("int8")
    with pytest.raises(ValueError, match="quantized \\('int8'\\)"):
        SVFDense.from_dense(dense)


@tensorflow_only
@pytest.mark.parametrize("compute", ["kernel", "factored"])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_factors_float32(policy, compute):
    keras.mixed_precision.set_global_policy(policy)
    dense = make_dense(16)
    svf = SVFDense.from_dense(dense, compute=compute)
    assert all(v.dtype == "float32" for v in svf.weights)
    with tf.GradientTape() as tape:
        y = svf(X)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    assert y.dtype == policy.split("_")[1]
    (grad,) = tape.gradient(loss, svf.trainable_variables)
    assert grad.dtype == tf.float32 and np.all(np.isfinite(grad.numpy()))
    expected = X @ keras.ops.convert_to_numpy(dense.kernel) + keras.ops.convert_to_numpy(
        dense.bias)
    assert relative_error(tf.cast(y, tf.float32), expected) < 2e-2
