"""NumPy references shared by several model tests (independent of svf_tf.models)."""

import numpy as np


def numpy_align_corners(x, out_h, out_w):
    """PyTorch's F.interpolate(bilinear, align_corners=True), written out per pixel."""
    batch, in_h, in_w, channels = x.shape
    out = np.zeros((batch, out_h, out_w, channels), np.float64)

    def source(i, n_in, n_out):
        pos = 0.0 if n_out == 1 else i * (n_in - 1) / (n_out - 1)
        lo = min(int(np.floor(pos)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    for i in range(out_h):
        y0, y1, fy = source(i, in_h, out_h)
        for j in range(out_w):
            x0, x1, fx = source(j, in_w, out_w)
            top = (1 - fx) * x[:, y0, x0] + fx * x[:, y0, x1]
            bottom = (1 - fx) * x[:, y1, x0] + fx * x[:, y1, x1]
            out[:, i, j] = (1 - fy) * top + fy * bottom
    return out
