"""Mixes of adapters on one layer against NumPy, and the learned mix through the harness."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

from svf_tf import SVFDense
from tests.helpers import run_layer_test
from tests.layers.test_svf_adapter_slots import X, make_dense


def with_adapters(dense, parametrization):
    """An SVF layer with adapters a and b: S scaled by two fixed vectors."""
    svf = SVFDense.from_dense(dense, parametrization=parametrization)
    s = np.linalg.svd(keras.ops.convert_to_numpy(dense.kernel).astype(np.float64),
                      compute_uv=False)
    scales = {"a": np.linspace(0.5, 2.0, 6), "b": np.linspace(2.0, 0.25, 6)}
    for name, scale in scales.items():
        svf.add_adapter(name)
        trained = ({"svf_s": s * scale} if parametrization == "direct"
                   else {"svf_s_prime": np.log(scale)})
        svf.set_adapter_values(name, {k: v.astype(np.float32) for k, v in trained.items()})
    return svf, s, scales


def numpy_dense(dense, singular_values):
    kernel = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)
    left, _, right_t = np.linalg.svd(kernel, full_matrices=False)
    return X @ (left * singular_values @ right_t) + keras.ops.convert_to_numpy(dense.bias)


@pytest.mark.parametrize("parametrization", ["direct", "exp"])
def test_mix_is_linear_in_s_or_in_log_s(parametrization):
    dense = make_dense()
    svf, s, scales = with_adapters(dense, parametrization)
    weights = {"a": 0.25, "b": 0.75}
    svf.add_adapter("mix")
    svf.set_adapter_values("mix", svf.mixed_adapter_values(weights))
    svf.set_adapter("mix")
    if parametrization == "direct":  # S = 0.25 S_a + 0.75 S_b
        expected = s * (0.25 * scales["a"] + 0.75 * scales["b"])
    else:  # log S = log S0 + 0.25 log(S_a/S0) + 0.75 log(S_b/S0): a geometric mean
        expected = s * scales["a"] ** 0.25 * scales["b"] ** 0.75
    np.testing.assert_allclose(convert_to_numpy(svf(X)), numpy_dense(dense, expected), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("parametrization", ["direct", "exp"])
def test_learned_mix_starts_at_its_initial_weights(parametrization):
    dense = make_dense()
    svf, s, scales = with_adapters(dense, parametrization)
    svf.learn_adapter_mixing(["a", "b"], initial_weights=[1.0, 0.0])
    assert [v.name for v in svf.trainable_variables] == ["svf_mix_weights"]
    np.testing.assert_allclose(convert_to_numpy(svf(X)), numpy_dense(dense, s * scales["a"]),
                               rtol=1e-5, atol=1e-5)


def test_learned_mix_through_the_layer_harness():
    def factory():
        svf, _, _ = with_adapters(make_dense(), "exp")
        svf.learn_adapter_mixing(["a", "b"], initial_weights=[0.3, 0.6])
        return svf

    # Trains: the 2 mixing weights. Frozen: U, S0, s' (the active factor, unread
    # while mixing), V, fingerprint, bias, base s', a, b, and the (2, 6) bank.
    layer, _ = run_layer_test(factory, X, expected_trainable=1, expected_non_trainable=10,
                              expected_output_shapes=(5, 6))
    assert layer.get_config()["mixing_adapters"] == ["a", "b"]


def test_mixing_refuses_trainable_u_and_bad_weights():
    svf = SVFDense.from_dense(make_dense(), trainable_factors="US")
    svf.add_adapter("a")
    with pytest.raises(ValueError, match="adapters mix only when S alone trains"):
        svf.mixed_adapter_values({"a": 1.0})
    svf, _, _ = with_adapters(make_dense(), "direct")
    with pytest.raises(ValueError, match="the weight of 'b' is nan; give a finite number"):
        svf.mixed_adapter_values({"a": 1.0, "b": float("nan")})
    with pytest.raises(ValueError, match="has no adapter 'c'"):
        svf.mixed_adapter_values({"c": 1.0})
    svf.learn_adapter_mixing(["a", "b"])
    with pytest.raises(ValueError, match="is learning a mix of \\['a', 'b'\\]; call "
                                         "freeze_adapter_mixing"):
        svf.set_adapter("a")
