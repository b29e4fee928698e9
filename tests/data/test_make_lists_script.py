"""scripts/make_lists.py and scripts/make_base_annotations.py, run as a user would."""

import json
import os
import subprocess
import sys

import cv2
import pytest

from tests.data.dataset_helpers import (
    PASCAL_NOVEL,
    list_pairs,
    reference_fold_lists,
    tiny_synthetic_root,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(script, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", script), *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


@pytest.fixture(scope="module")
def root():
    return tiny_synthetic_root()


def _expected(root, fold):
    dagger, dagger_pools = reference_fold_lists(root, list_pairs(root, "train"),
                                                PASCAL_NOVEL[fold], "train", dagger=True)
    plain, _ = reference_fold_lists(root, list_pairs(root, "train"), PASCAL_NOVEL[fold],
                                    "train", dagger=False)
    val, val_pools = reference_fold_lists(root, list_pairs(root, "val"), PASCAL_NOVEL[fold],
                                          "val", dagger=False)
    return dagger, dagger_pools, plain, val, val_pools


def test_json_output_matches_independent_count(root, tmp_path):
    result = _run("make_lists.py", "--dataset=pascal", f"--data_root={root}", "--fold=2",
                  f"--cache_dir={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    dagger, dagger_pools, plain, val, val_pools = _expected(root, 2)
    assert summary["train_images_dagger"] == len(dagger)
    assert summary["train_images_no_filter"] == len(plain)
    assert summary["val_images"] == len(val)
    assert summary["pools"]["train_dagger"] == {str(c): len(p) for c, p in dagger_pools.items()}
    assert summary["pools"]["val"] == {str(c): len(p) for c, p in val_pools.items()}
    assert all(os.path.isfile(p) for p in summary["list_files"].values())


def test_text_output(root, tmp_path):
    result = _run("make_lists.py", f"--data_root={root}", "--fold=0", f"--cache_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    dagger, _, plain, val, val_pools = _expected(root, 0)
    text = result.stdout
    assert f"novel classes filtered (dagger): {len(dagger)}\n" in text
    assert f"no filter (original PFENet):     {len(plain)}\n" in text
    assert f"val images:                                    {len(val)}\n" in text
    assert f"  1 aeroplane    {len(val_pools[1])}\n" in text


def test_user_errors_are_one_line(root, tmp_path):
    result = _run("make_lists.py", f"--data_root={root}", "--fold=4", f"--cache_dir={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Fold 4 is out of range: use an integer in 0..3.")
    assert "Traceback" not in result.stderr


def test_make_base_annotations_script(root, tmp_path):
    out = tmp_path / "base"
    result = _run("make_base_annotations.py", f"--data_root={root}", "--fold=3",
                  "--splits=val", f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}")
    assert result.returncode == 0, result.stderr
    _, _, _, val, _ = _expected(root, 3)
    written = sorted(os.listdir(out / "val" / "3"))
    assert written == sorted(os.path.basename(label) for _, label in val)
    # Fold 3: base 1..15 keep their ids (positions 1..15), novel 16..20 -> 0.
    for name in written:
        original = cv2.imread(os.path.join(root, "SegmentationClassAug", name), -1)
        base = cv2.imread(str(out / "val" / "3" / name), -1)
        expected = original.copy()
        expected[(original >= 16) & (original <= 20)] = 0
        assert (base == expected).all(), name
    inside = _run("make_base_annotations.py", f"--data_root={root}", "--fold=3",
                  f"--output_dir={os.path.join(root, 'base')}")
    assert inside.returncode == 1 and "inside the dataset root" in inside.stderr
