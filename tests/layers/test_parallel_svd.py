"""parallel_svd: concurrent decompositions, served once, equal to the one-at-a-time ones."""

import keras
import numpy as np
from keras.ops import convert_to_numpy

import svf_tf
from svf_tf.layers import parallel_svd


def test_prefetched_svds_equal_direct_ones_and_numpy():
    rng = np.random.default_rng(0)
    matrices = [rng.normal(size=shape) for shape in ((27, 8), (64, 256), (300, 40))]
    direct = [parallel_svd.full_svd(m) for m in matrices]
    with parallel_svd.prefetched_svds(matrices, workers=3):
        served = [parallel_svd.full_svd(m) for m in matrices]
    for m, (s, left, right), again in zip(matrices, direct, served, strict=True):
        for a, b in zip((s, left, right), again, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(s, np.linalg.svd(m, compute_uv=False), rtol=1e-12)
        np.testing.assert_allclose(left @ np.diag(s) @ right.T, m, atol=1e-12)
    assert parallel_svd._PREFETCHED is None  # nothing is kept after the block


def test_apply_svf_decomposes_each_kernel_once(monkeypatch):
    calls = []
    original = parallel_svd._svd
    monkeypatch.setattr(parallel_svd, "_svd", lambda m: calls.append(m.shape) or original(m))
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.Conv2D(6, 1), keras.layers.Flatten(),
                              keras.layers.Dense(5)])
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    svf_model = svf_tf.apply_svf(model)
    assert sorted(calls) == sorted([(27, 4), (4, 6), (216, 5)])  # in the prefetch only
    np.testing.assert_allclose(convert_to_numpy(svf_model(x)), convert_to_numpy(model(x)),
                               rtol=1e-4, atol=1e-5)
