"""Adaptive average pooling with PyTorch's windows (`nn.AdaptiveAvgPool2d`).

PFENet `model/PFENet.py` (`PFENet.forward`, the pyramid bins) and BAM
`model/PPM.py` (`PPM`) pool with it; its windows overlap when the output size
does not divide the input size, which no Keras pooling layer reproduces.
"""

import keras
import tensorflow as tf


def adaptive_pool_matrix(in_size, out_size, dtype=tf.float32):
    """The [out_size, in_size] averaging matrix of `nn.AdaptiveAvgPool` along one axis.

    Output cell i averages input indices [floor(i * n / o), ceil((i + 1) * n / o)).
    The windows overlap when o does not divide n (60 -> 8: starts 0, 7, 15,
    22, ...), and repeat input cells when o > n (30 -> 60), which is what
    PFENet's pyramid and PSPNet's PPM compute.

    Args:
        in_size: n, a Python int or a scalar int32 tensor.
        out_size: o, a Python int or a scalar int32 tensor (>= 1).
        dtype: matrix dtype.

    Returns:
        A [o, n] tensor whose rows are the averaging weights.
    """
    n = tf.cast(in_size, tf.int32)
    o = tf.cast(out_size, tf.int32)
    i = tf.range(o)[:, None]
    start = (i * n) // o
    end = ((i + 1) * n + o - 1) // o
    j = tf.range(n)[None, :]
    window = tf.cast((j >= start) & (j < end), dtype)
    return window / tf.cast(end - start, dtype)


def adaptive_average_pool(x, output_size):
    """`nn.AdaptiveAvgPool2d(output_size)` on a channels-last [B, H, W, C] tensor.

    Computed as two averaging-matrix products (rows, then columns), so sizes
    may be known only at run time and the gradient is exact.

    Args:
        x: [B, H, W, C].
        output_size: (out_h, out_w); ints or scalar int32 tensors.

    Returns:
        [B, out_h, out_w, C].
    """
    x = tf.convert_to_tensor(x)
    out_h, out_w = output_size
    shape = tf.shape(x)
    rows = adaptive_pool_matrix(shape[1], out_h, x.dtype)
    cols = adaptive_pool_matrix(shape[2], out_w, x.dtype)
    pooled = tf.einsum("oh,bhwc->bowc", rows, x)
    pooled = tf.einsum("pw,bowc->bopc", cols, pooled)
    if isinstance(out_h, int) and isinstance(out_w, int):
        pooled = tf.ensure_shape(pooled, [x.shape[0], out_h, out_w, x.shape[-1]])
    return pooled


@keras.saving.register_keras_serializable(package="svf_tf")
class AdaptiveAveragePooling(keras.layers.Layer):
    """Channels-last `nn.AdaptiveAvgPool2d` with PyTorch's overlapping windows.

    Keras' `AdaptiveAveragePooling2D` is not used: the references' numbers
    depend on the exact windows (60 -> 8, 81 -> 6, 30 -> 60), and here they
    are computed from the input size at run time.

    Args:
        output_size: int or (height, width).
        **kwargs: base `Layer` arguments.

    Example:
    ```python
    pooled = AdaptiveAveragePooling(6)(features)   # PSPNet's 6x6 bin
    ```
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        size = tuple(output_size) if isinstance(output_size, (list, tuple)) else (
            output_size, output_size)
        if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                                     for s in size):
            raise ValueError(
                f"AdaptiveAveragePooling: output_size={output_size!r} must be a positive int "
                "or a pair of positive ints.")
        self.output_size = size

    def call(self, inputs):
        return adaptive_average_pool(inputs, self.output_size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}
