"""SVFEinsumDense against the plain EinsumDense it replaces, and NumPy."""

import keras
import numpy as np
import pytest

from svf_tf import SVFEinsumDense
from svf_tf.layers import svf_factorization
from svf_tf.layers.svf_einsum_dense import einsum_folding
from tests.helpers import relative_error, run_layer_test

X = np.random.default_rng(0).normal(size=(2, 5, 12)).astype("float32")
# (equation, output_shape, bias_axes, input): attention's query/key/value and
# output projections, a transposed kernel ("dc": the output axis first) and an
# ellipsis equation.
CASES = {
    "qkv": ("abc,cde->abde", (None, 3, 4), "de", X),
    "attention_output": ("abcd,cde->abe", (None, 12), "e", X.reshape(2, 5, 3, 4)),
    "transposed_kernel": ("abc,dc->abd", (None, 7), None, X),
    "ellipsis": ("...b,bc->...c", 7, "c", X),
}


def make_einsum(name, **kwargs):
    equation, output_shape, bias_axes, x = CASES[name]
    layer = keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes,
                                     bias_initializer="random_normal", **kwargs)
    layer.build(x.shape)
    return layer, x


def numpy_fold(name, kernel):
    """The documented folding, written out per case: (contracted axes, output axes)."""
    kernel = np.asarray(kernel, np.float64)
    if name == "qkv":  # (c, d, e): c in, (d, e) out
        return kernel.reshape(kernel.shape[0], -1)
    if name == "attention_output":  # (c, d, e): (c, d) in, e out
        return kernel.reshape(-1, kernel.shape[-1])
    if name == "transposed_kernel":  # (d, c): c in, d out
        return kernel.T
    return kernel


@pytest.mark.parametrize("compute", ["kernel", "factored"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_untouched_layer_reproduces_plain_einsum_dense(name, compute):
    layer, x = make_einsum(name)
    svf = SVFEinsumDense.from_einsum_dense(layer, compute=compute)
    assert relative_error(svf(x), layer(x)) < 1e-5
    matrix = numpy_fold(name, keras.ops.convert_to_numpy(layer.kernel))
    assert svf._svf_matrix_shape == matrix.shape and svf.svf_rank == min(matrix.shape)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(svf.kernel),
                               keras.ops.convert_to_numpy(layer.kernel), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["qkv", "attention_output", "transposed_kernel"])
def test_scaled_singular_values_match_numpy(name):
    layer, x = make_einsum(name)
    equation = CASES[name][0]
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
    left, s, right_t = np.linalg.svd(numpy_fold(name, kernel), full_matrices=False)
    new_s = s * np.linspace(0.2, 3.0, s.size)
    new_kernel = (left * new_s) @ right_t  # folded; back to the kernel layout:
    if name == "transposed_kernel":
        new_kernel = new_kernel.T
    new_kernel = new_kernel.reshape(kernel.shape)
    expected = np.einsum(equation, x.astype(np.float64), new_kernel) + keras.ops.convert_to_numpy(
        layer.bias if layer.bias is not None else 0.0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(SVFEinsumDense.from_einsum_dense(layer).svf_s), s, rtol=1e-5)
    for compute in ("kernel", "factored"):
        svf = SVFEinsumDense.from_einsum_dense(layer, compute=compute)
        svf.svf_s.assign(new_s.astype(np.float32))
        assert relative_error(svf(x), expected) < 1e-5


def test_layer_harness():
    def factory():
        layer, _ = make_einsum("qkv", activation="relu")
        svf = SVFEinsumDense.from_einsum_dense(layer, parametrization="exp")
        svf.svf_s_prime.assign(np.full(svf.svf_rank, 0.1, np.float32))
        return svf

    # Kernel (12, 3, 4) folds to 12 x 12: rank 12; s' (12) trains; U (12x12),
    # S0 (12), V (12x12), the fingerprint and the bias (3x4) are frozen.
    run_layer_test(factory, X, expected_trainable=1, expected_non_trainable=5,
                   expected_params=(12, 144 + 12 + 144 + svf_factorization.FINGERPRINT_SIZE + 12),
                   expected_output_shapes=(2, 5, 3, 4))


def test_built_from_scratch_decomposes_its_initial_kernel():
    svf = SVFEinsumDense("abc,cde->abde", (None, 3, 4), bias_axes="de")
    svf.build(X.shape)
    assert svf.svf_rank == 12 and svf.bias.shape == (3, 4)
    assert np.isfinite(keras.ops.convert_to_numpy(svf(X))).all()


def test_folding_refuses_batched_kernels_and_bad_inputs():
    assert einsum_folding("abc,cde->abde")[:2] == ((0,), (1, 2))
    with pytest.raises(ValueError, match=r"cannot be folded to one matrix.*\['b'\] are in both"):
        SVFEinsumDense("abc,bcd->abd", (5, 7))
    with pytest.raises(ValueError, match="is not '<input>,<kernel>-><output>'"):
        einsum_folding("abc->ab")
    with pytest.raises(ValueError, match="needs a built EinsumDense, but 'proj' is not built"):
        SVFEinsumDense.from_einsum_dense(keras.layers.EinsumDense("ab,bc->ac", 3, name="proj"))
    layer, _ = make_einsum("qkv")
    layer.quantize("int8")
    with pytest.raises(ValueError, match="quantized \\('int8'\\)"):
        SVFEinsumDense.from_einsum_dense(layer)
