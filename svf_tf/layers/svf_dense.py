"""`SVFDense`: a Dense layer trained through the singular values of its kernel."""

import keras
import numpy as np
from keras import ops

from svf_tf.layers.svf_factorization import (
    DEFAULTS,
    SVFFactorization,
    check_svf_kwargs,
    check_svf_options,
)


@keras.saving.register_keras_serializable(package="svf_tf")
class SVFDense(SVFFactorization, keras.layers.Dense):
    """A Dense layer parameterised by the SVD of a pretrained kernel.

    The (in, units) kernel is decomposed once at build time as
    V diag(S) U^T (the reference `SVD_Linear`). Unlike the reference, which
    leaves decomposed Linear layers randomly initialised, `from_dense` seeds
    the factors from the real SVD of the pretrained kernel, so an untouched
    layer reproduces the original one.

    Args:
        units, **kwargs: as `keras.layers.Dense`.
        trainable_factors, parametrization, rank_multiple, compute, adapters,
            active_adapter, mixing_adapters: as `SVFConv2D`; "factored" (the
            default) computes ((x V) * S) U^T.

    Example:
    ```python
    dense = keras.layers.Dense(10)
    dense.build((None, 32))
    svf = SVFDense.from_dense(dense)
    x = np.random.rand(4, 32).astype("float32")
    np.testing.assert_allclose(svf(x), dense(x), rtol=1e-4, atol=1e-5)
    ```
    """

    def __init__(self, units, trainable_factors=DEFAULTS["trainable_factors"],
                 parametrization=DEFAULTS["parametrization"],
                 rank_multiple=DEFAULTS["rank_multiple"], compute=DEFAULTS["compute"],
                 adapters=None, active_adapter=None, mixing_adapters=None, **kwargs):
        # The SVF options first: a bad one is named before anything else is built.
        options = check_svf_options(trainable_factors, parametrization, rank_multiple, compute)
        super().__init__(units, **kwargs)
        self._check_no_kernel_extras(self.name, self.kernel_regularizer, self.kernel_constraint,
                                     self.lora_rank)
        self._init_svf(*options, adapters=adapters, active_adapter=active_adapter,
                       mixing_adapters=mixing_adapters)

    @classmethod
    def from_dense(cls, dense, **svf_options):
        """An SVF layer equal to a built `keras.layers.Dense`, seeded from its weights.

        Args:
            dense: a built, non-quantized `keras.layers.Dense`.
            **svf_options: as `SVFConv2D.from_conv`.

        Raises:
            ValueError: an unknown or bad option (checked first), or a `dense`
                SVF cannot decompose; one line naming the value and the fix.
        """
        options = check_svf_kwargs("SVFDense.from_dense", svf_options)
        if not isinstance(dense, keras.layers.Dense) or isinstance(dense, SVFDense):
            raise ValueError(
                f"SVFDense.from_dense expects a keras.layers.Dense, got {dense!r} "
                f"({type(dense).__name__}).")
        if not dense.built:
            raise ValueError(
                f"SVFDense.from_dense needs a built Dense, but '{dense.name}' is not built: "
                "call it on an input or call dense.build(input_shape) first.")
        layer = cls._seeded_from(dense, options, (None, dense.kernel.shape[0]))
        return layer

    def build(self, input_shape):
        fan_in = input_shape[-1]
        if fan_in is None:
            raise ValueError(
                f"SVFDense '{self.name}' needs a known last dimension; got {input_shape}.")
        bias = self._build_svf((fan_in, self.units), fan_in, self.units)
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,),
                initializer=self.bias_initializer if bias is None
                else (lambda shape, dtype=None: ops.convert_to_tensor(np.asarray(bias), dtype)),
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                trainable=False, dtype=self.dtype)
        else:
            self.bias = None
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: fan_in})
        self._build_svf_adapters()
        self.built = True

    def call(self, inputs, training=None):
        if self.compute == "kernel":
            x = ops.matmul(inputs, self.kernel)
        else:
            x = ops.matmul(inputs, ops.cast(self.svf_v, self.compute_dtype))
            x = ops.multiply(x, ops.cast(self.singular_values, self.compute_dtype))
            x = ops.matmul(x, ops.cast(ops.transpose(self.svf_u), self.compute_dtype))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        return {**super().get_config(), **self._svf_config()}
