"""The SVF layer library on Keras' other backends: tests/layers and tests/surgery again.

The layer library (layers, apply/merge/unmerge, named adapters, adapter
files) uses only `keras.ops` and NumPy; its tests run again with
KERAS_BACKEND=jax and KERAS_BACKEND=torch, each in a subprocess (the backend
is fixed when Keras is first imported). Tests that drive TensorFlow itself
are marked `tensorflow_only` and skip there. The `.keras` round trips are
compared bit for bit under every backend. A static check (default tier) that
the library imports no TensorFlow comes with them.
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# backend -> (module it needs, extra environment)
BACKENDS = {
    "jax": ("jax", {"JAX_PLATFORMS": "cpu"}),
    "torch": ("torch", {}),
}


# The layer and surgery tests again, in a subprocess each; measured twice on 2 shared cores
# (the spread is the other load): jax 141 and 191 s, torch 27 and 72 s.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", pytest.param("torch", marks=pytest.mark.torch)])
def test_layer_library_tests_pass_under(backend):
    module, extra_env = BACKENDS[backend]
    pytest.importorskip(module)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/layers",
         "tests/surgery"],
        cwd=ROOT, env={**os.environ, "KERAS_BACKEND": backend, **extra_env},
        capture_output=True, text=True, timeout=1200)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
    # Only the tests that drive TensorFlow skip (-ra lists every skip with its reason).
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and all("uses TensorFlow directly" in line for line in skips), skips


def _imports(path):
    """Names of the modules a source file imports (absolute imports, as written)."""
    names = []
    with open(path) as file:
        tree = ast.parse(file.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a import b`: a, and a.b in case b is a module.
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_the_layer_library_imports_no_tensorflow():
    # The static half of the check above (cheap, default tier): no module of
    # svf_tf/layers or svf_tf/surgery, nor any svf_tf module they import,
    # imports TensorFlow. (A runtime check cannot tell: Keras' PyTorch backend
    # imports torch._dynamo, which itself imports TensorFlow when installed.)
    package = os.path.join(ROOT, "svf_tf")
    pending = [f"svf_tf.{folder}.{name[:-3]}" for folder in ("layers", "surgery")
               for name in sorted(os.listdir(os.path.join(package, folder)))
               if name.endswith(".py")]
    seen, offenders = set(), []
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        path = os.path.join(ROOT, *parts) + ".py"
        if not os.path.exists(path):
            path = os.path.join(ROOT, *parts, "__init__.py")
        if not os.path.exists(path):
            continue  # `from svf_tf.x import name` where name is not a module
        for name in _imports(path):
            if "tensorflow" in name.split("."):
                offenders.append(f"{module} imports {name}")
            elif name.split(".")[0] == "svf_tf":
                pending.append(name)
    assert not offenders, offenders
    assert "svf_tf.constants" in seen and "svf_tf.layers.svf_factorization" in seen
