"""The SVF layer library on Keras' other backends: tests/layers and tests/surgery under JAX.

The layer library (layers, apply/merge/unmerge, named adapters, adapter
files) uses only `keras.ops` and NumPy; its tests run again with
KERAS_BACKEND=jax in a subprocess (the backend is fixed when Keras is first
imported). Tests that drive TensorFlow itself are marked `tensorflow_only`
and skip there.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # the layer and surgery tests again, ~3 min on 2 cores
def test_layer_library_tests_pass_under_jax():
    pytest.importorskip("jax")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/layers",
         "tests/surgery"],
        cwd=ROOT, env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"},
        capture_output=True, text=True, timeout=1200)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
