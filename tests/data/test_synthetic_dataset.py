"""The built-in synthetic dataset: Pascal layout, label values, class coverage, caching."""

import collections
import json
import os

import cv2
import numpy as np
import pytest

from svf_tf.data import ensure_synthetic_dataset
from svf_tf.data.synthetic.scene import SHAPES, TEXTURES, _Placement, class_design, paint_texture
from tests.data.dataset_helpers import (
    PASCAL_NOVEL,
    TINY_OPTIONS,
    list_pairs,
    reference_fold_lists,
    tiny_synthetic_root,
)


@pytest.fixture(scope="module")
def root():
    return tiny_synthetic_root()


def _ids(root, split):
    with open(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt")) as f:
        return [line.strip() for line in f if line.strip()]


def test_pascal_layout(root):
    for split, count in (("train", TINY_OPTIONS["num_train"]), ("val", TINY_OPTIONS["num_val"])):
        ids = _ids(root, split)
        assert len(ids) == len(set(ids)) == count
        assert list_pairs(root, split) == [
            (f"JPEGImages/{i}.jpg", f"SegmentationClassAug/{i}.png") for i in ids]
    all_ids = _ids(root, "train") + _ids(root, "val")
    assert sorted(os.listdir(os.path.join(root, "JPEGImages"))) == sorted(
        f"{i}.jpg" for i in all_ids)
    assert sorted(os.listdir(os.path.join(root, "SegmentationClassAug"))) == sorted(
        f"{i}.png" for i in all_ids)
    assert set(_ids(root, "train")).isdisjoint(_ids(root, "val"))


def test_images_and_labels(root):
    shapes, values = set(), collections.Counter()
    for split in ("train", "val"):
        for image_path, label_path in list_pairs(root, split):
            with open(os.path.join(root, image_path), "rb") as f:
                assert f.read(2) == b"\xff\xd8"  # JPEG
            image = cv2.imread(os.path.join(root, image_path))
            label = cv2.imread(os.path.join(root, label_path), cv2.IMREAD_UNCHANGED)
            assert label.ndim == 2 and label.dtype == np.uint8
            assert image.shape[:2] == label.shape
            assert all(TINY_OPTIONS["min_side"] <= s <= TINY_OPTIONS["max_side"]
                       for s in label.shape)
            shapes.add(label.shape)
            present = set(np.unique(label).tolist())
            assert present <= set(range(21)) | {255}
            assert {0, 255} <= present and present - {0, 255}
            values.update((split, v) for v in present)
            # The 255 ring separates every object from everything else: no two
            # 4-neighbours carry different values unless one of them is 255.
            for a, b in ((label[1:], label[:-1]), (label[:, 1:], label[:, :-1])):
                touching = (a != b) & (a != 255) & (b != 255)
                assert not touching.any(), label_path
    assert len(shapes) > 10 and any(h != w for h, w in shapes)
    for split in ("train", "val"):
        assert all(values[(split, c)] > 0 for c in range(1, 21)), split


def test_several_objects_of_varied_size_position_and_colour(root):
    classes_per_image, areas, centres = [], collections.defaultdict(list), []
    colours = collections.defaultdict(list)
    for image_path, label_path in list_pairs(root, "train") + list_pairs(root, "val"):
        label = cv2.imread(os.path.join(root, label_path), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(os.path.join(root, image_path))
        present = sorted(set(np.unique(label).tolist()) - {0, 255})
        classes_per_image.append(len(present))
        for c in present:
            rows, cols = np.nonzero(label == c)
            areas[c].append(rows.size / label.size)
            centres.append((rows.mean() / label.shape[0], cols.mean() / label.shape[1]))
            colours[c].append(image[rows, cols].mean(axis=0))
    # 1-3 extra objects per image (some hidden, cut off or of the main class).
    assert np.mean(np.asarray(classes_per_image) >= 2) > 0.6
    # Per class, the largest instance typically covers many times the smallest's share.
    assert np.median([max(a) / min(a) for a in areas.values() if len(a) >= 3]) > 5
    centres = np.asarray(centres)
    assert centres.min(axis=0).max() < 0.3 and centres.max(axis=0).min() > 0.7
    # A class's mean colour varies between instances (colour is not the class cue).
    spread = [np.ptp(np.asarray(v), axis=0).max() for v in colours.values() if len(v) >= 3]
    assert np.median(spread) > 40


def test_every_class_has_a_val_pool(root):
    # Main classes cycle through all 20, so each class leads >= num_val // 20 val images.
    minimum = TINY_OPTIONS["num_val"] // 20
    pairs = list_pairs(root, "val")
    for fold in range(4):
        _, pools = reference_fold_lists(root, pairs, PASCAL_NOVEL[fold], "val", dagger=False)
        assert min(len(p) for p in pools.values()) >= minimum, (fold, pools)


def test_class_designs_need_both_cues():
    designs = [class_design(c) for c in range(1, 21)]
    assert len(set(designs)) == 20
    assert collections.Counter(s for s, _ in designs) == {s: 2 for s in SHAPES}
    assert collections.Counter(t for _, t in designs) == {t: 2 for t in TEXTURES}


def _file_bytes(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(d, f), "rb") as handle:
                out[os.path.relpath(os.path.join(d, f), root)] = handle.read()
    return out


SMALL = dict(num_train=6, num_val=4, min_side=128, max_side=144)


def test_deterministic_from_seed(tmp_path):
    a = _file_bytes(ensure_synthetic_dataset(str(tmp_path / "a"), seed=5, **SMALL))
    b = _file_bytes(ensure_synthetic_dataset(str(tmp_path / "b"), seed=5, **SMALL))
    c = _file_bytes(ensure_synthetic_dataset(str(tmp_path / "c"), seed=6, **SMALL))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_reused_then_regenerated_when_options_change(tmp_path):
    root = str(tmp_path / "syn")
    assert ensure_synthetic_dataset(root, **SMALL) == root
    label = os.path.join(root, "SegmentationClassAug", "train_000000.png")
    stamp = os.stat(label).st_mtime_ns
    os.utime(label, ns=(stamp - 10**9, stamp - 10**9))
    ensure_synthetic_dataset(root, **SMALL)
    assert os.stat(label).st_mtime_ns == stamp - 10**9, "a matching dataset must be reused"
    ensure_synthetic_dataset(root, **{**SMALL, "num_train": 7})
    assert len(_ids(root, "train")) == 7
    with open(os.path.join(root, "svf_tf_synthetic.json")) as f:
        assert json.load(f)["options"]["num_train"] == 7
    # A manifest from an older generator version also triggers regeneration.
    manifest = os.path.join(root, "svf_tf_synthetic.json")
    with open(manifest) as f:
        old = json.load(f)
    old["version"] = -1
    with open(manifest, "w") as f:
        json.dump(old, f)
    ensure_synthetic_dataset(root, **SMALL)
    with open(manifest) as f:
        assert json.load(f)["version"] != -1
    assert os.listdir(tmp_path) == ["syn"], "no staging or replaced copy may be left"


def test_default_root_is_under_svf_tf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SVF_TF_CACHE", str(tmp_path / "cache"))
    root = ensure_synthetic_dataset(**SMALL)
    assert os.path.dirname(root) == str(tmp_path / "cache")
    assert os.path.basename(root).startswith("synthetic_pascal-")  # non-default options


def test_refuses_foreign_directory_and_bad_options(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"mine.*not a synthetic dataset"):
        ensure_synthetic_dataset(str(tmp_path / "mine"), **SMALL)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match=r"num_images"):
        ensure_synthetic_dataset(str(tmp_path / "x"), num_images=3)
    with pytest.raises(ValueError, match=r"min_side=50"):
        ensure_synthetic_dataset(str(tmp_path / "x"), min_side=50)
    with pytest.raises(ValueError, match=r"min_extra_objects=3, max_extra_objects=2"):
        ensure_synthetic_dataset(str(tmp_path / "x"), min_extra_objects=3, max_extra_objects=2)


@pytest.mark.parametrize("scale", [12.0, 30.0, 90.0])
def test_texture_period_follows_object_size(scale):
    """4-7 stripe periods across an object of any size, so the pattern survives downscaling."""
    side = int(4 * scale)
    placement = _Placement(scale, 1.0, 0.0, (side / 2, side / 2))
    mask = np.zeros((side, side), bool)
    mask[side // 2 - int(scale):side // 2 + int(scale), :] = True  # the object's 2*scale rows
    for seed in range(5):
        image = np.zeros((side, side, 3), np.float32)
        paint_texture(image, mask, "stripes", placement, np.random.default_rng(seed))
        column = image[mask[:, 0], side // 2].sum(axis=1)
        bands = 1 + np.count_nonzero(np.abs(np.diff(column)) > 30)  # light/dark runs
        assert 8 <= bands <= 15, (scale, seed, bands)  # 2 bands a period, 4-7 periods


@pytest.mark.slow
def test_default_size_meets_its_promises(synthetic_cache):
    """Default options: every val pool >= 6 in every fold, a few hundred train images."""
    # The session's dataset is the default one (conftest.py); ensure_synthetic_dataset
    # finds it by its manifest instead of generating it a second time (~13 CPU-s).
    root = ensure_synthetic_dataset(os.path.join(synthetic_cache, "synthetic_pascal"))
    for fold in range(4):
        items, _ = reference_fold_lists(root, list_pairs(root, "train"), PASCAL_NOVEL[fold],
                                        "train", dagger=True)
        assert 200 <= len(items) <= 600, (fold, len(items))
        _, pools = reference_fold_lists(root, list_pairs(root, "val"), PASCAL_NOVEL[fold], "val",
                                        dagger=False)
        assert min(len(p) for p in pools.values()) >= 6, (fold, pools)
