"""`SVFEinsumDense`: an EinsumDense layer trained through the singular values of its kernel."""

import math
import re
import string

import keras
import numpy as np
from keras import ops
from keras.src.layers.core.einsum_dense import _analyze_einsum_string

from svf_tf.layers.svf_factorization import (
    DEFAULTS,
    SVFFactorization,
    check_svf_kwargs,
    check_svf_options,
)


def einsum_folding(equation, owner="SVFEinsumDense"):
    """How an EinsumDense kernel folds to a matrix: (input axes, output axes, factored equations).

    Each kernel axis is an *input* axis (its letter is in the input and not
    in the output: it is contracted) or an *output* axis (in the output and
    not in the input). The kernel is folded to a (fan_in, units) matrix by
    moving the input axes first, each group in kernel order, and reshaping:
    for "abc,cde->abde" (the query projection of attention, kernel
    (hidden, heads, key_dim)) the matrix is (hidden, heads * key_dim); for
    "abcd,cde->abe" (the attention output, kernel (heads, key_dim, hidden))
    it is (heads * key_dim, hidden). A kernel axis that is in both the input
    and the output (a batched kernel, a block-diagonal map) has no such
    matrix and is refused.

    Returns:
        (input axes, output axes, equation of the V step, equation of the U
        step): the factored call is einsum(V step, x, V) -> scale by S ->
        einsum(U step, ., U).

    Raises:
        ValueError: the equation is not "<input>,<kernel>-><output>" or a
            kernel axis is neither purely contracted nor purely an output.
    """
    match = re.fullmatch(r"([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)", equation.replace(" ", ""))
    if not match:
        raise ValueError(
            f"{owner}: equation {equation!r} is not '<input>,<kernel>-><output>' "
            "(e.g. 'abc,cde->abde').")
    inputs, kernel, outputs = match.groups()
    input_axes = [i for i, c in enumerate(kernel) if c in inputs and c not in outputs]
    output_axes = [i for i, c in enumerate(kernel) if c in outputs and c not in inputs]
    shared = [c for c in kernel if c in inputs and c in outputs]
    if shared or len(set(kernel)) != len(kernel) or not input_axes or not output_axes \
            or len(input_axes) + len(output_axes) != len(kernel):
        raise ValueError(
            f"{owner}: equation {equation!r} cannot be folded to one matrix: every kernel "
            "axis must be contracted (in the input only) or an output axis (in the output "
            f"only), with at least one of each{f'; {shared} are in both' if shared else ''}. "
            "Leave this layer out of SVF (filters=...).")
    rank_letter = next(c for c in string.ascii_letters if c not in equation)
    kernel_in = "".join(kernel[i] for i in input_axes)
    kernel_out = "".join(kernel[i] for i in output_axes)
    middle = "".join(c for c in inputs if c not in kernel_in) + rank_letter
    return (tuple(input_axes), tuple(output_axes),
            f"{inputs},{kernel_in}{rank_letter}->{middle}",
            f"{middle},{rank_letter}{kernel_out}->{outputs}")


@keras.saving.register_keras_serializable(package="svf_tf")
class SVFEinsumDense(SVFFactorization, keras.layers.EinsumDense):
    """An EinsumDense layer parameterised by the SVD of a pretrained kernel.

    The kernel is folded to a matrix (fan_in, units) with the contracted
    axes first and the output axes second, each group in kernel order
    (`einsum_folding`), and decomposed once as V diag(S) U^T, as
    `SVFDense` does with its (in, units) kernel. For attention's query, key
    and value projections ("abc,cde->abde", kernel (hidden, heads, key_dim))
    that is (hidden, heads * key_dim): one SVD across all heads, so S has
    min(hidden, heads * key_dim) values. For the output projection
    ("abcd,cde->abe", kernel (heads, key_dim, hidden)) it is
    (heads * key_dim, hidden). An untouched layer computes what the layer it
    was made from computes; the bias stays outside the SVD and is frozen.

    Args:
        equation, output_shape, **kwargs: as `keras.layers.EinsumDense`.
        trainable_factors, parametrization, rank_multiple, compute, adapters,
            active_adapter, mixing_adapters: as `SVFConv2D`; "factored" (the
            default) computes einsum(x, V) * S, then einsum with U^T.

    Example:
    ```python
    layer = keras.layers.EinsumDense("abc,cde->abde", (None, 4, 8), bias_axes="de")
    layer.build((None, 5, 16))
    svf = SVFEinsumDense.from_einsum_dense(layer)
    x = np.random.rand(2, 5, 16).astype("float32")
    np.testing.assert_allclose(svf(x), layer(x), rtol=1e-4, atol=1e-5)
    ```
    """

    def __init__(self, equation, output_shape, trainable_factors=DEFAULTS["trainable_factors"],
                 parametrization=DEFAULTS["parametrization"],
                 rank_multiple=DEFAULTS["rank_multiple"], compute=DEFAULTS["compute"],
                 adapters=None, active_adapter=None, mixing_adapters=None, **kwargs):
        # The SVF options first: a bad one is named before anything else is built.
        options = check_svf_options(trainable_factors, parametrization, rank_multiple, compute)
        super().__init__(equation, output_shape, **kwargs)
        self._check_no_kernel_extras(self.name, self.kernel_regularizer, self.kernel_constraint,
                                     self.lora_rank)
        (self._svf_input_axes, self._svf_output_axes, self._svf_v_equation,
         self._svf_u_equation) = einsum_folding(equation, f"SVFEinsumDense '{self.name}'")
        self._init_svf(*options, adapters=adapters, active_adapter=active_adapter,
                       mixing_adapters=mixing_adapters)

    @classmethod
    def from_einsum_dense(cls, layer, **svf_options):
        """An SVF layer equal to a built `keras.layers.EinsumDense`, seeded from its weights.

        Args:
            layer: a built, non-quantized `keras.layers.EinsumDense` whose
                equation folds to a matrix (`einsum_folding`).
            **svf_options: as `SVFConv2D.from_conv`.

        Raises:
            ValueError: an unknown or bad option (checked first), or a layer
                SVF cannot decompose; one line naming the value and the fix.
        """
        options = check_svf_kwargs("SVFEinsumDense.from_einsum_dense", svf_options)
        if not isinstance(layer, keras.layers.EinsumDense) or isinstance(layer, SVFEinsumDense):
            raise ValueError(
                f"SVFEinsumDense.from_einsum_dense expects a keras.layers.EinsumDense, got "
                f"{layer!r} ({type(layer).__name__}).")
        build_config = layer.get_build_config() if layer.built else None
        if not build_config or "input_shape" not in build_config:
            raise ValueError(
                f"SVFEinsumDense.from_einsum_dense needs a built EinsumDense, but '{layer.name}' "
                "is not built (or was built without an input shape): call it on an input or "
                "call layer.build(input_shape) first.")
        svf = cls._seeded_from(layer, options, build_config["input_shape"])
        return svf

    @property
    def use_bias(self):
        """Whether the layer has a bias (EinsumDense has one when `bias_axes` is set)."""
        return self.bias_axes is not None

    def build(self, input_shape):
        kernel_shape, bias_shape, _, input_axes, output_axes = _analyze_einsum_string(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape)
        kernel_shape = tuple(int(d) for d in kernel_shape)
        self._svf_in_dims = tuple(kernel_shape[i] for i in self._svf_input_axes)
        self._svf_out_dims = tuple(kernel_shape[i] for i in self._svf_output_axes)
        if self._svf_seed is None and not self._svf_restoring:
            # Made from scratch: decompose a kernel drawn as EinsumDense would draw it.
            initializer = self.kernel_initializer
            if isinstance(initializer, keras.initializers.VarianceScaling) and (
                    initializer.input_axes is None or initializer.output_axes is None):
                initializer = self._update_kernel_initializer(input_axes, output_axes)
            self._svf_seed = (ops.convert_to_numpy(initializer(kernel_shape, "float32")), None)
        bias = self._build_svf(kernel_shape, math.prod(self._svf_in_dims),
                               math.prod(self._svf_out_dims))
        if bias_shape is not None:
            self.bias = self.add_weight(
                name="bias", shape=tuple(bias_shape),
                initializer=self.bias_initializer if bias is None
                else (lambda shape, dtype=None: ops.convert_to_tensor(np.asarray(bias), dtype)),
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                trainable=False, dtype=self.dtype)
        else:
            self.bias = None
        self.input_spec = keras.layers.InputSpec(ndim=len(input_shape))
        self._build_svf_adapters()
        self.built = True

    def _svf_fold(self, kernel):
        order = self._svf_input_axes + self._svf_output_axes
        return np.transpose(kernel, order).reshape(self._svf_matrix_shape)

    def _svf_unfold(self, matrix):
        order = self._svf_input_axes + self._svf_output_axes
        return ops.transpose(ops.reshape(matrix, self._svf_in_dims + self._svf_out_dims),
                             tuple(int(i) for i in np.argsort(order)))

    def call(self, inputs, training=None):
        if self.compute == "kernel":
            x = ops.einsum(self.equation, inputs, self.kernel)
        else:
            v = ops.reshape(ops.cast(self.svf_v, self.compute_dtype),
                            self._svf_in_dims + (self.svf_rank,))
            x = ops.einsum(self._svf_v_equation, inputs, v)
            x = ops.multiply(x, ops.cast(self.singular_values, self.compute_dtype))
            u = ops.reshape(ops.cast(ops.transpose(self.svf_u), self.compute_dtype),
                            (self.svf_rank,) + self._svf_out_dims)
            x = ops.einsum(self._svf_u_equation, x, u)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        return {**super().get_config(), **self._svf_config()}
