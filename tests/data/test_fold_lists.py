"""build_fold_lists: BAM's `make_dataset` rule, the † filter, caching, and bad input."""

import os

import cv2
import numpy as np
import pytest

from svf_tf.data import build_fold_lists, fold_classes
from svf_tf.data.lists import label_stats as label_stats_module
from svf_tf.data.lists.list_files import derived_pairs
from tests.data.dataset_helpers import (
    PASCAL_NOVEL,
    list_pairs,
    reference_fold_lists,
    tiny_synthetic_root,
)


@pytest.fixture(scope="module")
def root():
    return tiny_synthetic_root()


def _relative(root, items):
    return [(os.path.relpath(i, root), os.path.relpath(lb, root)) for i, lb in items]


@pytest.mark.parametrize("fold", range(4))
@pytest.mark.parametrize("split,dagger", [("train", True), ("train", False), ("val", False)])
def test_lists_match_independent_count(root, tmp_path_factory, fold, split, dagger):
    cache = str(tmp_path_factory.getbasetemp() / "shared_cache")
    lists = build_fold_lists("pascal", root, fold, split, filter_novel=dagger, cache_dir=cache,
                             progress=False)
    items, pools = reference_fold_lists(root, list_pairs(root, split), PASCAL_NOVEL[fold], split,
                                        dagger)
    assert items, "the tiny dataset should give a non-empty list"
    assert _relative(root, lists.items) == items
    assert lists.classes == (fold_classes("pascal", fold).base if split == "train"
                             else fold_classes("pascal", fold).novel)
    assert set(lists.class_pools) == set(lists.classes)
    for c in lists.classes:
        assert _relative(root, lists.class_pools[c]) == pools[c], c
    assert all(os.path.isabs(p) and os.path.isfile(p) for item in lists.items for p in item)


def test_default_filter_is_dagger_for_train_only(root, tmp_path):
    kwargs = dict(cache_dir=str(tmp_path), progress=False)
    assert build_fold_lists("pascal", root, 0, "train", **kwargs).items == build_fold_lists(
        "pascal", root, 0, "train", filter_novel=True, **kwargs).items
    assert build_fold_lists("pascal", root, 0, "val", **kwargs).items == build_fold_lists(
        "pascal", root, 0, "val", filter_novel=False, **kwargs).items


def test_dagger_drops_every_image_with_a_novel_pixel(root, tmp_path):
    kwargs = dict(cache_dir=str(tmp_path), progress=False)
    dagger = build_fold_lists("pascal", root, 0, "train", **kwargs)
    plain = build_fold_lists("pascal", root, 0, "train", filter_novel=False, **kwargs)
    assert set(dagger.items) < set(plain.items)
    for _, label in dagger.items:
        assert not np.isin(cv2.imread(label, cv2.IMREAD_UNCHANGED), [1, 2, 3, 4, 5]).any()
    dropped = set(plain.items) - set(dagger.items)
    for _, label in dropped:
        assert np.isin(cv2.imread(label, cv2.IMREAD_UNCHANGED), [1, 2, 3, 4, 5]).any()


def _tiny_dataset(root, labels):
    """A Pascal-layout dataset from {name: label array}, with an explicit list file."""
    for sub in ("JPEGImages", "SegmentationClassAug"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    lines = []
    for name, label in labels.items():
        cv2.imwrite(os.path.join(root, "JPEGImages", f"{name}.jpg"),
                    np.full(label.shape + (3,), 128, np.uint8))
        cv2.imwrite(os.path.join(root, "SegmentationClassAug", f"{name}.png"), label)
        lines.append(f"JPEGImages/{name}.jpg SegmentationClassAug/{name}.png\n")
    list_file = os.path.join(os.path.dirname(root), "list.txt")
    with open(list_file, "w") as f:
        f.writelines(lines)
    return list_file


def _label(**pixels):
    """A 64x64 label with the given number of pixels per class (`c6=2048`)."""
    label = np.zeros(64 * 64, np.uint8)
    start = 0
    for name, count in pixels.items():
        label[start:start + count] = int(name[1:])
        start += count
    return label.reshape(64, 64)


def test_hand_made_threshold_and_filter_cases(tmp_path):
    root = str(tmp_path / "data")
    list_file = _tiny_dataset(root, {
        "exact": _label(c6=2048),               # exactly at the threshold: kept
        "below": _label(c7=2047),               # one pixel short: not kept
        "novel_pixel": _label(c8=3000, c1=1),   # one novel pixel: dropped by the dagger only
        "two": _label(c9=2100, c10=2047, c255=500),
        "novel_only": _label(c2=2500),          # a val image of fold 0
    })
    kwargs = dict(list_file=list_file, cache_dir=str(tmp_path / "cache"), progress=False)

    def names(items):
        return [os.path.basename(i)[:-4] for i, _ in items]

    dagger = build_fold_lists("pascal", root, 0, "train", **kwargs)
    assert names(dagger.items) == ["exact", "two"]
    assert names(dagger.class_pools[6]) == ["exact"]
    assert names(dagger.class_pools[9]) == ["two"]
    assert dagger.class_pools[7] == dagger.class_pools[10] == ()
    plain = build_fold_lists("pascal", root, 0, "train", filter_novel=False, **kwargs)
    assert names(plain.items) == ["exact", "novel_pixel", "two"]
    val = build_fold_lists("pascal", root, 0, "val", **kwargs)
    assert names(val.items) == ["novel_only"]
    assert val.pool_sizes() == {1: 0, 2: 1, 3: 0, 4: 0, 5: 0}


def _snapshot(root):
    return {os.path.join(d, f): (os.stat(os.path.join(d, f)).st_size,
                                 os.stat(os.path.join(d, f)).st_mtime_ns)
            for d, _, files in os.walk(root) for f in files}


def test_cache_is_used_then_invalidated(tmp_path, monkeypatch):
    root = str(tmp_path / "data")
    list_file = _tiny_dataset(root, {"a": _label(c6=3000), "b": _label(c7=3000)})
    kwargs = dict(list_file=list_file, cache_dir=str(tmp_path / "cache"), progress=False)
    before = _snapshot(root)
    first = build_fold_lists("pascal", root, 0, "train", **kwargs)
    assert first.pool_sizes()[6] == 1 and first.pool_sizes()[7] == 1
    assert _snapshot(root) == before, "the dataset directory must never be modified"
    assert os.path.isfile(first.list_path) and first.list_path.startswith(str(tmp_path / "cache"))

    # A second build reads no label at all.
    def no_reading(*args, **kwargs):
        raise AssertionError("label read despite a valid cache")

    monkeypatch.setattr(label_stats_module, "read_label", no_reading)
    assert build_fold_lists("pascal", root, 2, "train", **kwargs).items == first.items
    monkeypatch.undo()

    # Changing a label (new content and mtime) invalidates its cached counts.
    label_b = os.path.join(root, "SegmentationClassAug", "b.png")
    cv2.imwrite(label_b, _label(c7=100))
    os.utime(label_b, ns=(1, 1))
    changed = build_fold_lists("pascal", root, 0, "train", **kwargs)
    assert changed.pool_sizes()[7] == 0

    # A different list (content) gets its own cache entry.
    with open(list_file, "w") as f:
        f.write("JPEGImages/a.jpg SegmentationClassAug/a.png\n")
    assert [os.path.basename(i) for i, _ in build_fold_lists("pascal", root, 0, "train",
                                                             **kwargs).items] == ["a.jpg"]


def test_cache_goes_to_svf_tf_cache_and_never_into_data_root(tmp_path, monkeypatch):
    root = str(tmp_path / "data")
    list_file = _tiny_dataset(root, {"a": _label(c6=3000)})
    monkeypatch.setenv("SVF_TF_CACHE", str(tmp_path / "env_cache"))
    lists = build_fold_lists("pascal", root, 0, "train", list_file=list_file, progress=False)
    assert lists.list_path.startswith(str(tmp_path / "env_cache"))
    with pytest.raises(ValueError, match=r"inside the dataset root"):
        build_fold_lists("pascal", root, 0, "train", list_file=list_file,
                         cache_dir=os.path.join(root, "cache"), progress=False)


def test_readable_list_file(root, tmp_path):
    lists = build_fold_lists("pascal", root, 2, "val", cache_dir=str(tmp_path), progress=False)
    with open(lists.list_path) as f:
        lines = [line.split() for line in f if not line.startswith("#")]
    pairs = [line for line in lines if len(line) == 2]
    pools = [line for line in lines if len(line) == 3]
    assert [tuple(p) for p in pairs] == _relative(root, lists.items)
    assert len(pools) == sum(lists.pool_sizes().values())


def test_derived_pascal_train_merges_sbd_then_voc(tmp_path):
    split_dir = tmp_path / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True)
    (split_dir / "train.txt").write_text("2007_a\n2007_b\n")
    (split_dir / "val.txt").write_text("2007_v\n")
    assert [p[0] for p in derived_pairs("pascal", str(tmp_path), "train")] == [
        "JPEGImages/2007_a.jpg", "JPEGImages/2007_b.jpg"]
    (split_dir / "sbd_train_noval.txt").write_text("2008_c\n2007_a\n")
    assert derived_pairs("pascal", str(tmp_path), "train") == [
        ("JPEGImages/2008_c.jpg", "SegmentationClassAug/2008_c.png"),
        ("JPEGImages/2007_a.jpg", "SegmentationClassAug/2007_a.png"),
        ("JPEGImages/2007_b.jpg", "SegmentationClassAug/2007_b.png"),
    ]
    assert derived_pairs("pascal", str(tmp_path), "val") == [
        ("JPEGImages/2007_v.jpg", "SegmentationClassAug/2007_v.png")]


def test_coco_lists_from_masks(tmp_path):
    root = tmp_path / "coco"
    masks = {"COCO_val2014_000000000002": _label(c1=2500, c2=2048),
             "COCO_val2014_000000000001": _label(c22=3000, c5=10)}
    for name, label in masks.items():
        (root / "val2014").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / "val2014").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "val2014" / f"{name}.jpg"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(root / "annotations" / "val2014" / f"{name}.png"), label)
    kwargs = dict(cache_dir=str(tmp_path / "cache"), progress=False)
    interleaved = build_fold_lists("coco", str(root), 0, "val", **kwargs)  # novel 1, 5, 9, ...
    assert [os.path.basename(i) for i, _ in interleaved.items] == [
        "COCO_val2014_000000000002.jpg"]
    assert interleaved.pool_sizes()[1] == 1 and interleaved.pool_sizes()[5] == 0
    contiguous = build_fold_lists("coco", str(root), 1, "val", coco_split="contiguous", **kwargs)
    assert [os.path.basename(i) for i, _ in contiguous.items] == [
        "COCO_val2014_000000000001.jpg"]
    assert contiguous.classes == tuple(range(21, 41))


def test_bad_input_errors_name_the_problem(tmp_path):
    root = str(tmp_path / "data")
    list_file = _tiny_dataset(root, {"a": _label(c6=3000), "b": _label(c6=3000, c42=5)})
    kwargs = dict(cache_dir=str(tmp_path / "cache"), progress=False)
    with pytest.raises(FileNotFoundError, match=r"'/nonexistent/voc'.*prepare_pascal"):
        build_fold_lists("pascal", "/nonexistent/voc", 0, "train", **kwargs)
    with pytest.raises(FileNotFoundError, match=r"nolist\.txt"):
        build_fold_lists("pascal", root, 0, "train", list_file=str(tmp_path / "nolist.txt"),
                         **kwargs)
    with pytest.raises(FileNotFoundError, match=r"ImageSets/Segmentation/train\.txt"):
        build_fold_lists("pascal", root, 0, "train", **kwargs)
    with pytest.raises(ValueError, match=r"b\.png.*\[42\]"):
        build_fold_lists("pascal", root, 0, "train", list_file=list_file, **kwargs)
    with pytest.raises(ValueError, match=r"Fold 4"):
        build_fold_lists("pascal", root, 4, "train", list_file=list_file, **kwargs)
    with pytest.raises(ValueError, match=r"'test'"):
        build_fold_lists("pascal", root, 0, "test", list_file=list_file, **kwargs)

    def write_list(text):
        path = tmp_path / "bad_list.txt"
        path.write_text(text)
        return str(path)

    bad = write_list("JPEGImages/a.jpg SegmentationClassAug/a.png\nJPEGImages/zz.jpg "
                     "SegmentationClassAug/a.png\n")
    with pytest.raises(FileNotFoundError, match=r"zz\.jpg.*line 2"):
        build_fold_lists("pascal", root, 0, "train", list_file=bad, **kwargs)
    bad = write_list("JPEGImages/a.jpg SegmentationClassAug/zz.png\n")
    with pytest.raises(FileNotFoundError, match=r"zz\.png.*line 1"):
        build_fold_lists("pascal", root, 0, "train", list_file=bad, **kwargs)
    bad = write_list("JPEGImages/a.jpg\n")
    with pytest.raises(ValueError, match=r"bad_list\.txt:1.*image_path label_path"):
        build_fold_lists("pascal", root, 0, "train", list_file=bad, **kwargs)
    bad = write_list("\n\n")
    with pytest.raises(ValueError, match=r"bad_list\.txt.*no"):
        build_fold_lists("pascal", root, 0, "train", list_file=bad, **kwargs)


def test_damaged_cache_is_rebuilt(tmp_path):
    root = str(tmp_path / "data")
    list_file = _tiny_dataset(root, {"a": _label(c6=3000)})
    kwargs = dict(list_file=list_file, cache_dir=str(tmp_path / "cache"), progress=False)
    build_fold_lists("pascal", root, 0, "train", **kwargs)
    stats_dir = tmp_path / "cache" / "label_stats"
    (cache_file,) = stats_dir.iterdir()
    cache_file.write_text("# header\nthis line is not a cache entry\n")
    assert build_fold_lists("pascal", root, 0, "train", **kwargs).pool_sizes()[6] == 1
    assert "SegmentationClassAug/a.png" in cache_file.read_text()


def test_cache_of_one_dataset_root_is_never_used_for_another(tmp_path):
    # Two roots with the same list, and labels of equal size and mtime but
    # different classes: only the dataset root in the cache key tells them apart.
    roots = [str(tmp_path / name / "data") for name in ("a", "b")]
    list_a = _tiny_dataset(roots[0], {"x": _label(c6=3000)})
    list_b = _tiny_dataset(roots[1], {"x": _label(c7=3000)})
    labels = [os.path.join(r, "SegmentationClassAug", "x.png") for r in roots]
    assert os.path.getsize(labels[0]) == os.path.getsize(labels[1])
    for label in labels:
        os.utime(label, ns=(10**18, 10**18))
    cache = str(tmp_path / "cache")
    first = build_fold_lists("pascal", roots[0], 0, "train", list_file=list_a, cache_dir=cache,
                             progress=False)
    second = build_fold_lists("pascal", roots[1], 0, "train", list_file=list_b,
                              cache_dir=cache, progress=False)
    assert first.pool_sizes()[6] == 1 and first.pool_sizes()[7] == 0
    assert second.pool_sizes()[6] == 0 and second.pool_sizes()[7] == 1
    assert first.list_path != second.list_path


def test_readable_lists_are_named_by_fold_and_options(root, tmp_path):
    kwargs = dict(cache_dir=str(tmp_path), progress=False)
    paths = {build_fold_lists("pascal", root, fold, "train", filter_novel=dagger,
                              **kwargs).list_path
             for fold in (0, 1) for dagger in (True, False)}
    assert len(paths) == 4
    assert {os.path.basename(p) for p in paths} == {
        "train_fold0_dagger.txt", "train_fold0_nofilter.txt", "train_fold1_dagger.txt",
        "train_fold1_nofilter.txt"}
