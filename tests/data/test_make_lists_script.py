"""scripts/make_lists.py and scripts/make_base_annotations.py, run as a user would."""

import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.data.dataset_helpers import (
    PASCAL_NOVEL,
    list_pairs,
    reference_fold_lists,
    tiny_synthetic_root,
)

# Command-line runs in a subprocess: the marked tier (`pytest -m slow`). The
# functions these scripts print (build_fold_lists, to_base_annotation) are
# checked in-process in test_fold_lists.py and test_base_annotation.py.
pytestmark = pytest.mark.slow

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
        "error: --fold=4 is not accepted: give an integer in [0, 3].")
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


def test_bad_input_is_one_line_naming_the_file(tmp_path):
    # A missing root (FileNotFoundError) and a bad label value (ValueError,
    # raised while labels are read in worker threads) from the command line;
    # the other messages are checked in test_fold_lists.py.
    data = tmp_path / "voc"
    (data / "JPEGImages").mkdir(parents=True)
    (data / "SegmentationClassAug").mkdir()
    cv2.imwrite(str(data / "JPEGImages" / "a.jpg"), 128 * np.ones((64, 64, 3), np.uint8))
    label = np.zeros((64, 64), np.uint8)
    label[:40] = 6
    label[50:, :2] = 33  # not a Pascal class
    cv2.imwrite(str(data / "SegmentationClassAug" / "a.png"), label)
    list_file = tmp_path / "list.txt"
    list_file.write_text("JPEGImages/a.jpg SegmentationClassAug/a.png\n")
    before = sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*"))
    cases = [
        ([f"--data_root={tmp_path / 'nowhere'}"], r"nowhere' is not a directory.*prepare_pascal"),
        ([f"--data_root={data}", f"--train_list={list_file}"],
         r"a\.png' contains class value\(s\) \[33\] outside 0\.\.20.*prepare_pascal"),
    ]
    for args, message in cases:
        result = _run("make_lists.py", "--fold=0", f"--cache_dir={tmp_path / 'cache'}", *args)
        assert result.returncode == 1, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert "Traceback" not in result.stderr, result.stderr
        assert lines[-1].startswith("error: ") and re.search(message, lines[-1]), lines
    assert sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*")) == before
