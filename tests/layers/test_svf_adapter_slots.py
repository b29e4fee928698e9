"""Named adapters of one SVF layer, through the shared layer harness."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

from svf_tf import SVFConv2D, SVFDense
from svf_tf.layers import svf_factorization
from tests.helpers import run_layer_test

X = np.random.default_rng(0).normal(size=(5, 10)).astype("float32")


def make_dense(units=6, fan_in=10):
    dense = keras.layers.Dense(units, bias_initializer="random_normal")
    dense.build((None, fan_in))
    return dense


def test_layer_harness_with_two_adapters():
    def factory():
        svf = SVFDense.from_dense(make_dense())
        svf.add_adapter("a")
        svf.add_adapter("b")
        svf.set_adapter_values("a", {"svf_s": svf.svf_s.numpy() * 1.5})
        svf.set_adapter_values("b", {"svf_s": svf.svf_s.numpy() * 0.5})
        svf.set_adapter("a")
        return svf

    # Dense(6) on 10 inputs, rank 6: S (6) trains; U, V, the fingerprint, the bias,
    # the base copy of S and the copies of a and b are frozen.
    layer, (outputs,) = run_layer_test(
        factory, X, expected_trainable=1, expected_non_trainable=7,
        expected_params=(6, 36 + 60 + svf_factorization.FINGERPRINT_SIZE + 6 + 3 * 6),
        expected_output_shapes=(5, 6))
    config = layer.get_config()
    assert (config["adapters"], config["active_adapter"]) == (["a", "b"], "a")


def test_plain_layer_config_has_no_adapter_keys():
    # The Keras LoRA habit: new config keys only once the feature is used.
    svf = SVFDense.from_dense(make_dense())
    assert "adapters" not in svf.get_config() and "active_adapter" not in svf.get_config()
    svf.add_adapter("a")
    svf.delete_adapter("a")
    assert "adapters" not in svf.get_config()
    assert [v.name for v in svf.weights] == ["svf_s", "svf_u", "svf_v", "svf_base_fingerprint",
                                             "bias"]


def test_each_adapter_computes_what_the_plain_layer_with_its_kernel_computes():
    dense = make_dense()
    kernel = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)
    bias = keras.ops.convert_to_numpy(dense.bias)
    left, s, right_t = np.linalg.svd(kernel, full_matrices=False)
    svf = SVFDense.from_dense(dense)
    scales = {"a": np.linspace(0.5, 2.0, 6), "b": np.linspace(2.0, 0.1, 6)}
    for name, scale in scales.items():
        svf.add_adapter(name)
        svf.set_adapter_values(name, {"svf_s": (s * scale).astype(np.float32)})
    for name in ["a", "b", "a"]:
        svf.set_adapter(name)
        np.testing.assert_allclose(convert_to_numpy(svf(X)),
                                   X @ (left * (s * scales[name]) @ right_t) + bias,
                                   rtol=1e-5, atol=1e-5)
    svf.disable_adapter()
    np.testing.assert_allclose(convert_to_numpy(svf(X)), convert_to_numpy(dense(X)), rtol=1e-5,
                               atol=1e-5)
    assert svf.trainable_variables == []


def test_trained_layer_cannot_take_its_factors_as_base():
    conv = keras.layers.Conv2D(4, 3, name="c")
    conv.build((None, 8, 8, 3))
    svf = SVFConv2D.from_conv(conv)
    svf.svf_s.assign(svf.svf_s.numpy() * 1.1)
    with pytest.raises(ValueError, match="layer 'c' no longer computes its base kernel"):
        svf.add_adapter("a")


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, 3])
def test_bad_adapter_names(name):
    svf = SVFDense.from_dense(make_dense())
    with pytest.raises(ValueError, match="adapter name .* is not accepted"):
        svf.add_adapter(name)
