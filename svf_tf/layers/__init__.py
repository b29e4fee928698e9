"""SVF layers."""

from svf_tf.layers.svf_conv2d import SVFConv2D
from svf_tf.layers.svf_dense import SVFDense
from svf_tf.layers.svf_einsum_dense import SVFEinsumDense

__all__ = ["SVFConv2D", "SVFDense", "SVFEinsumDense"]
