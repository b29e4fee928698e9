"""Full SVDs of folded kernels, on the host in float64, several at a time.

The backend's own SVD (`keras.ops.svd`) runs on the CPU in float64; where
the backend has no float64 (JAX without `jax_enable_x64`), NumPy's does the
work (about 10x slower than TensorFlow's on 2 cores, the same numbers to
float64 rounding). TensorFlow's CPU SVD kernel runs one decomposition on one
core, and the 53
convs of a ResNet-50 take ~9 s one after another on 2 cores. `apply_svf`
knows every kernel it will decompose before it rebuilds the model, so it
decomposes them concurrently first (`prefetched_svds`) and the layers built
inside that block take their factors from memory (`full_svd`): half the
time on 2 cores, the same numbers.
"""

import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
from keras import ops

# {key: (s, left, right)} while a `prefetched_svds` block is active, else None.
_PREFETCHED = None


def _key(matrix):
    digest = hashlib.blake2b(matrix.tobytes(), digest_size=16).hexdigest()
    return matrix.shape, digest


def _backend_has_float64():
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.read("jax_enable_x64"))


def _svd(matrix):
    # On the host in float64: GPU SVDs are slow and float32 ones lose the small
    # singular values (tensorflow/tensorflow issues #13603 and #26842).
    if not _backend_has_float64():
        left, s, right_t = np.linalg.svd(matrix, full_matrices=False)
        return s, left, right_t.T
    with keras.device("cpu:0"):
        left, s, right_t = ops.svd(ops.convert_to_tensor(matrix, "float64"),
                                   full_matrices=False)
    return (ops.convert_to_numpy(s), ops.convert_to_numpy(left),
            ops.convert_to_numpy(right_t).T)


def full_svd(matrix):
    """(s, left, right) with matrix = left @ diag(s) @ right.T (thin SVD, float64).

    Served from memory when a `prefetched_svds` block decomposed `matrix`.
    """
    matrix = np.ascontiguousarray(matrix, np.float64)
    if _PREFETCHED is not None:
        found = _PREFETCHED.get(_key(matrix))
        if found is not None:
            return found
    return _svd(matrix)


@contextlib.contextmanager
def prefetched_svds(matrices, workers=None):
    """Decomposes `matrices` concurrently; `full_svd` serves them inside the block.

    Args:
        matrices: float arrays (folded kernels) to decompose.
        workers: threads; default the number of CPUs.
    """
    global _PREFETCHED
    matrices = [np.ascontiguousarray(m, np.float64) for m in matrices]
    # Largest first, so that the slowest decompositions do not start last.
    matrices.sort(key=lambda m: -m.size)
    with ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
        results = list(pool.map(_svd, matrices))
    outer, _PREFETCHED = _PREFETCHED, {**(_PREFETCHED or {}),
                                       **{_key(m): r for m, r in zip(matrices, results,
                                                                     strict=True)}}
    try:
        yield
    finally:
        _PREFETCHED = outer
