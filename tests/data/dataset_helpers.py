"""Helpers for the dataset tests: one tiny synthetic dataset, and an independent list count.

`reference_fold_lists` re-implements the list rule of BAM `util/dataset.py`
(`make_dataset`) directly with cv2 + numpy over the label files, written
from that function and sharing no code with `svf_tf.data.lists.fold_lists`.
"""

import atexit
import functools
import os
import shutil
import tempfile

import cv2
import numpy as np

from svf_tf.data import ensure_synthetic_dataset

TINY_OPTIONS = dict(num_train=40, num_val=40, min_side=128, max_side=176, seed=3)

PASCAL_NOVEL = {0: range(1, 6), 1: range(6, 11), 2: range(11, 16), 3: range(16, 21)}


@functools.cache
def tiny_synthetic_root() -> str:
    """A tiny synthetic dataset, generated once per test process."""
    root = tempfile.mkdtemp(prefix="svf_tf_tiny_synthetic_")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return ensure_synthetic_dataset(os.path.join(root, "data"), **TINY_OPTIONS)


def list_pairs(root: str, split: str):
    """(image, label) relative pairs of the synthetic dataset's list file."""
    with open(os.path.join(root, "lists", f"{split}.txt")) as f:
        return [tuple(line.split()) for line in f if line.strip()]


def reference_fold_lists(root, pairs, novel, split, dagger):
    """`make_dataset`'s rule written out: returns (items, {class: pool}) with relative paths."""
    novel = set(novel)
    target = set(range(1, 21)) - novel if split == "train" else novel
    items, pools = [], {c: [] for c in sorted(target)}
    for image, label in pairs:
        values = cv2.imread(os.path.join(root, label), cv2.IMREAD_UNCHANGED)
        present = {int(v) for v in np.unique(values)} - {0, 255}
        if dagger and not present <= target:
            continue
        big = [c for c in sorted(present & target) if np.sum(values == c) >= 2048]
        if big:
            items.append((image, label))
            for c in big:
                pools[c].append((image, label))
    return items, pools
