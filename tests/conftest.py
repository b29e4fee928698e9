"""Shared test set-up.

Runs before TensorFlow initialises its devices: the CPU is split into two
logical devices so that MirroredStrategy tests have two replicas on any
machine, and TensorFlow's start-up chatter is silenced.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Under pytest-xdist (`-n N`) the workers share the cores: each worker, and every script its
# tests start (they inherit the environment), gets TensorFlow and PyTorch compute pools of
# its share of the cores instead of one the size of the machine each, which on 2 cores
# oversubscribes them. An explicit TF_NUM_INTRAOP_THREADS / OMP_NUM_THREADS is kept.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _share = str(max(1, (os.cpu_count() or 1) // _workers))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _share)
    os.environ.setdefault("OMP_NUM_THREADS", _share)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from svf_tf.backbones import build_backbone  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with default dtype policy and a fixed seed."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory):
    """One default synthetic dataset and list cache for the whole session (per xdist worker).

    Defined here, not imported into test modules: an imported fixture is
    set up again in every module that imports it.
    """
    from svf_tf.data import ensure_synthetic_dataset

    cache = tmp_path_factory.mktemp("svf_cache")
    ensure_synthetic_dataset(str(cache / "synthetic_pascal"))
    return str(cache)


@pytest.fixture
def linked_cache(tmp_path, synthetic_cache):
    """A private cache directory (`tmp_path/cache`) holding the session's synthetic dataset.

    The dataset is a symlink, as a first `ensure_synthetic_dataset` leaves it (generating it
    again takes ~13 CPU-s); the lists, label statistics and anything else a command writes
    into its cache stay in this test's directory.
    """
    from tests.helpers import link_synthetic_dataset

    return link_synthetic_dataset(tmp_path / "cache", synthetic_cache)


# Real backbones, built once per test session (the SVF ResNet-50 decomposition takes ~20 s);
# several heads can sit on one backbone model (its layers are shared), which is what makes
# the model tests' whole matrix affordable.


# The references' variants: deep-stem ResNet-50 (D2 dilation, as the SVF
# baseline/PFENet; BAM's D1 only changes receptive fields) and VGG16-BN.
REAL_BACKBONES = {
    "resnet50": dict(stem="deep", dilation="torchvision"),
    "vgg16": dict(batch_norm=True),
}
_CACHE = {}


def real_backbone(name, finetune):
    """A `build_backbone(name, weights=None, finetune=finetune)` shared by the session."""
    key = (name, finetune)
    if key not in _CACHE:
        _CACHE[key] = build_backbone(name, None, finetune=finetune,
                                     model_name=f"{name}_{finetune}_backbone",
                                     **REAL_BACKBONES[name])
    return _CACHE[key]


@pytest.fixture(scope="session")
def backbones():
    """`backbones(name, finetune)` -> the session's shared real backbone."""
    return real_backbone


def _checkout_outputs():
    """Files under the checkout's default output folders (runs/, work_dirs/) with mtimes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = {}
    for folder in ("runs", "work_dirs"):
        for directory, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                path = os.path.join(directory, name)
                found[path] = os.stat(path).st_mtime_ns
    return found


@pytest.fixture(scope="session", autouse=True)
def _checkout_is_not_written():
    """No test may write runs into the checkout: every run goes to a tmp_path --work_dir."""
    before = _checkout_outputs()
    yield
    changed = sorted(path for path, mtime in _checkout_outputs().items()
                     if before.get(path) != mtime)
    assert not changed, f"tests wrote into the checkout: {changed[:5]}"


# The slow tier's longest files, longest first. With `--no-loadscope-reorder` (the README's
# slow-tier command) pytest-xdist hands files to its workers in collection order; without
# this order the longest files come last (alphabetically, and xdist's own reorder puts the
# files with the most tests first), and one worker runs the last long file while the other
# has nothing left: the longest-first order keeps both busy to the end.
LONGEST_FILES_FIRST = (
    "tests/tasks/test_synthetic_pretrain.py",
    "tests/test_benchmark_script.py",
    "tests/test_backends.py",
    "tests/runs/test_run_directory_cli.py",
    "tests/runs/test_trainer.py",
    "tests/test_replicate_finetuning_script.py",
    "tests/cli/test_filesystem_errors.py",
    "tests/analysis/test_analyze_command.py",
    "tests/config/test_configs.py",
    "tests/runs/test_multi_worker_cli.py",
    "tests/runs/test_multi_worker.py",
    "tests/test_readme.py",
)


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {path: index for index, path in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
