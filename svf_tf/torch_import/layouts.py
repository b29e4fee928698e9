"""How a PyTorch tensor becomes a Keras variable: the layout conversions.

PyTorch stores conv weights as (out, in, kh, kw) (OIHW) and Keras as
(kh, kw, in, out) (HWIO). A 1x1 conv used on a [B, C, 1, 1] tensor is a
Keras `Dense` with an (in, out) kernel. BAM's bias-free 1x1 "merge" convs
(2 -> 1) are two scalars in Keras. Biases and BatchNorm vectors keep their
layout.
"""

import dataclasses
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
    """A named conversion from a PyTorch tensor to a Keras variable value.

    Attributes:
        name: short description shown in the conversion report.
        accepts: PyTorch shape -> whether the conversion applies to it.
        convert: numpy array -> numpy array in Keras' layout.
    """

    name: str
    accepts: Callable[[tuple], bool]
    convert: Callable[[np.ndarray], np.ndarray]

    def apply(self, value: np.ndarray):
        """The converted value, or None if the tensor's shape does not fit this layout."""
        if not self.accepts(tuple(value.shape)):
            return None
        return self.convert(value)


CONV_KERNEL = Layout("OIHW->HWIO", lambda shape: len(shape) == 4,
                     lambda w: np.ascontiguousarray(w.transpose(2, 3, 1, 0)))
VECTOR = Layout("as is", lambda shape: len(shape) == 1, lambda v: v)
# BAM's k-shot re-weighting convs act on a [B, K, 1, 1] tensor: a Dense layer.
CONV1X1_AS_DENSE = Layout("(O,I,1,1)->(I,O)",
                          lambda shape: len(shape) == 4 and shape[2:] == (1, 1),
                          lambda w: np.ascontiguousarray(w[:, :, 0, 0].T))
# BAM's gram_merge / cls_merge: Conv2d(2, 1, 1, bias=False), weight (1, 2, 1, 1).
MERGE_WEIGHTS = Layout("(1,C,1,1)->(C,)",
                       lambda shape: len(shape) == 4 and shape[0] == 1 and shape[2:] == (1, 1),
                       lambda w: w.reshape(-1))
