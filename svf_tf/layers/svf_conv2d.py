"""`SVFConv2D`: a Conv2D whose kernel is trained through its singular values."""

import math

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
class SVFConv2D(SVFFactorization, keras.layers.Conv2D):
    """A 2D convolution parameterised by the SVD of a pretrained kernel.

    The kernel (kh, kw, Ci, Co) is folded to a (kh*kw*Ci, Co) matrix and
    decomposed once, at build time, in float64 on the CPU: W = V diag(S) U^T
    with rank R = min(kh*kw*Ci, Co) (SVF paper section 3.2). U and V are
    frozen; the singular values S train. An untouched layer computes the same
    convolution as the layer it was made from. The bias stays outside the SVD
    and is frozen, as in the reference `SVD_Conv2d`.

    Usually made from a pretrained layer with `SVFConv2D.from_conv(conv)` or
    for a whole model with `svf_tf.apply_svf`; built from scratch it
    decomposes a kernel drawn from `kernel_initializer`. Loading a `.keras`
    file runs no SVD: the factors are created empty and read from the file
    (so `Model.from_config` alone, without weights, leaves them at zero).

    Args:
        filters, kernel_size, **kwargs: as `keras.layers.Conv2D`.
        trainable_factors: which of "U", "S", "V" train (non-empty subset;
            paper Table 7). Default ("S",), the paper's SVF.
        parametrization: "direct" (S itself trains, as the authors' code) or
            "exp" (S = S0 * exp(s'), S0 frozen and s' starting at zero;
            paper Appendix D).
        rank_multiple: keep the full rank floored to a multiple of this.
            1 (default) is exact; 4 reproduces the reference code (the RGB
            stem conv drops from rank 27 to 24).
        compute: None (default) picks "factored", or "kernel" for grouped
            convolutions. "factored" runs the paper's Algorithm 1: conv
            with V, scale by S, 1x1 conv with U (groups=1 only). With only S
            training it needs no kernel gradient and trains faster than a
            plain conv (0.66-0.77x at ResNet50 conv4/conv5 shapes on CPU,
            scripts/benchmark.py). "kernel" composes W = V diag(S) U^T (a
            small matmul) and runs one convolution, like Keras' LoRA: the
            cheaper choice when U or V train, and for inference (or merge
            with `svf_tf.merge_svf`). Both give the same numbers.
        adapters, active_adapter, mixing_adapters: the names of the layer's
            named adapters, the one it computes with (None: the base) and
            those whose mix it is learning; written by `get_config` once
            `add_adapter` was called, not set by hand
            (`svf_tf.layers.svf_adapter_slots`, `svf_adapter_mixing`).

    Example:
    ```python
    conv = keras.layers.Conv2D(64, 3, padding="same")
    conv.build((None, 32, 32, 16))
    svf = SVFConv2D.from_conv(conv)
    x = np.random.rand(2, 32, 32, 16).astype("float32")
    np.testing.assert_allclose(svf(x), conv(x), rtol=1e-4, atol=1e-5)
    [v.name for v in svf.trainable_variables]  # ['svf_s']
    ```
    """

    def __init__(self, filters, kernel_size, trainable_factors=DEFAULTS["trainable_factors"],
                 parametrization=DEFAULTS["parametrization"],
                 rank_multiple=DEFAULTS["rank_multiple"], compute=DEFAULTS["compute"],
                 adapters=None, active_adapter=None, mixing_adapters=None, **kwargs):
        # The SVF options first: a bad one is named before anything else is built.
        options = check_svf_options(trainable_factors, parametrization, rank_multiple, compute)
        super().__init__(filters, kernel_size, **kwargs)
        self._check_no_kernel_extras(self.name, self.kernel_regularizer, self.kernel_constraint,
                                     self.lora_rank)
        self._init_svf(*options, default_compute="kernel" if self.groups > 1 else "factored",
                       adapters=adapters, active_adapter=active_adapter,
                       mixing_adapters=mixing_adapters)
        if self.compute == "factored" and self.groups != 1:
            raise ValueError(
                f"SVFConv2D '{self.name}': compute='factored' needs groups=1 (got "
                f"groups={self.groups}); use compute='kernel' for grouped convolutions.")

    @classmethod
    def from_conv(cls, conv, **svf_options):
        """An SVF layer equal to a built `keras.layers.Conv2D`, seeded from its weights.

        Keeps strides, padding, dilation, groups, data format, activation,
        bias, dtype policy and name. The new layer is trainable (its
        `trainable_factors` train) whatever the source's `trainable` flag.

        Args:
            conv: a built `keras.layers.Conv2D` (a LoRA-enabled one is
                decomposed with its LoRA update merged in).
            **svf_options: `trainable_factors`, `parametrization`,
                `rank_multiple`, `compute` (see the class docstring).

        Raises:
            ValueError: an unknown or bad option (checked first), or a `conv`
                SVF cannot decompose; one line naming the value and the fix.
        """
        options = check_svf_kwargs("SVFConv2D.from_conv", svf_options)
        if not isinstance(conv, keras.layers.Conv2D) or isinstance(conv, SVFConv2D):
            raise ValueError(
                f"SVFConv2D.from_conv expects a keras.layers.Conv2D, got {conv!r} "
                f"({type(conv).__name__}).")
        if not conv.built:
            raise ValueError(
                f"SVFConv2D.from_conv needs a built Conv2D, but '{conv.name}' is not built: "
                "call it on an input or call conv.build(input_shape) (and load its weights) "
                "first.")
        if options["compute"] == "factored" and conv.groups != 1:
            raise ValueError(
                f"SVFConv2D.from_conv: compute='factored' needs groups=1, but '{conv.name}' has "
                f"groups={conv.groups}; use compute='kernel' or None (the default).")
        channels = conv.kernel.shape[-2] * conv.groups
        layer = cls._seeded_from(conv, options, (None, None, None, channels)
                                 if conv.data_format == "channels_last"
                                 else (None, channels, None, None))
        return layer

    def build(self, input_shape):
        channel_axis = -1 if self.data_format == "channels_last" else 1
        channels = input_shape[channel_axis]
        if channels is None:
            raise ValueError(
                f"SVFConv2D '{self.name}' needs a known channel dimension; got input shape "
                f"{input_shape}.")
        if channels % self.groups != 0:
            raise ValueError(
                f"SVFConv2D '{self.name}': {channels} input channels are not divisible by "
                f"groups={self.groups}.")
        self.input_spec = keras.layers.InputSpec(min_ndim=4, axes={channel_axis: channels})
        kernel_shape = tuple(self.kernel_size) + (channels // self.groups, self.filters)
        self.compute_output_shape(input_shape)
        bias = self._build_svf(kernel_shape, math.prod(kernel_shape[:-1]), self.filters)
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,),
                initializer=self.bias_initializer if bias is None
                else (lambda shape, dtype=None: ops.convert_to_tensor(np.asarray(bias), dtype)),
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                trainable=False, dtype=self.dtype)
        else:
            self.bias = None
        self._build_svf_adapters()
        self.built = True

    def call(self, inputs):
        if self.compute == "kernel":
            return super().call(inputs)
        channels_last = self.data_format == "channels_last"
        v = ops.reshape(ops.convert_to_tensor(self.svf_v), self._svf_kernel_shape[:-1]
                        + (self.svf_rank,))
        outputs = self.convolution_op(inputs, ops.cast(v, self.compute_dtype))
        scale_shape = (1, 1, 1, self.svf_rank) if channels_last else (1, self.svf_rank, 1, 1)
        outputs = ops.multiply(outputs, ops.cast(ops.reshape(self.singular_values, scale_shape),
                                                 self.compute_dtype))
        u = ops.reshape(ops.transpose(ops.convert_to_tensor(self.svf_u)),
                        (1, 1, self.svf_rank, self.filters))
        outputs = ops.conv(outputs, ops.cast(u, self.compute_dtype), strides=1, padding="valid",
                           data_format=self.data_format)
        if self.use_bias:
            bias_shape = (1, 1, 1, self.filters) if channels_last else (1, self.filters, 1, 1)
            outputs = ops.add(outputs, ops.reshape(self.bias, bias_shape))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        return {**super().get_config(), **self._svf_config()}
