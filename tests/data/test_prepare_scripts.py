"""prepare_pascal / prepare_coco on tiny originals written here (SBD .mat, COCO JSON)."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from svf_tf.data import build_fold_lists
from svf_tf.data.lists.list_files import derived_pairs
from svf_tf.data.preparation.coco import category_index, prepare_coco_masks
from svf_tf.data.preparation.pascal import prepare_pascal_labels

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(script, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", script), *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def _lines(path, ids):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(f"{i}\n" for i in ids)


def _palette_png(path, indices):
    image = Image.fromarray(indices, mode="P")
    palette = [0] * 768
    for index in range(256):  # VOC-like colours that are not the indices
        palette[3 * index:3 * index + 3] = [(37 * index) % 256, (91 * index) % 256, 200]
    image.putpalette(palette)
    image.save(path)


def _segmentation(value, size=(60, 70)):
    label = np.zeros(size, np.uint8)
    label[5:55, 5:65] = value  # 3000 px, above the 2048-pixel pool threshold
    return label


@pytest.fixture
def voc_sbd(tmp_path):
    """VOC: train [a], val [b]; SBD: train [a, c, d], val [e]; VOC Main val holds d."""
    voc, sbd = tmp_path / "VOC2012", tmp_path / "sbd"
    for image_id in "abcde":
        (voc / "JPEGImages").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(voc / "JPEGImages" / f"{image_id}.jpg"), np.zeros((60, 70, 3), np.uint8))
    (voc / "SegmentationClass").mkdir()
    voc_a = _segmentation(15)
    voc_a[4, 5:65] = 255  # VOC's void boundary
    _palette_png(str(voc / "SegmentationClass" / "a.png"), voc_a)
    _palette_png(str(voc / "SegmentationClass" / "b.png"), _segmentation(3))
    _lines(str(voc / "ImageSets" / "Segmentation" / "train.txt"), ["a"])
    _lines(str(voc / "ImageSets" / "Segmentation" / "val.txt"), ["b"])
    _lines(str(voc / "ImageSets" / "Main" / "val.txt"), ["b", "d", "e"])
    (sbd / "cls").mkdir(parents=True)
    for image_id, value in zip("acde", (2, 7, 9, 11), strict=True):
        scipy.io.savemat(str(sbd / "cls" / f"{image_id}.mat"), {"GTcls": {
            "Segmentation": _segmentation(value), "CategoriesPresent": np.array([value]),
        }})
    _lines(str(sbd / "train.txt"), ["a", "c", "d"])
    _lines(str(sbd / "val.txt"), ["e"])
    return str(voc), str(sbd)


def _read(path):
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


def _check_pascal_outputs(voc, cache_dir):
    """What prepare_pascal must leave in the VOC folder of `voc_sbd`."""
    aug = os.path.join(voc, "SegmentationClassAug")
    assert sorted(os.listdir(aug)) == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    expected_a = _segmentation(15)
    expected_a[4, 5:65] = 255
    assert np.array_equal(_read(os.path.join(aug, "a.png")), expected_a)  # VOC wins over SBD
    assert np.array_equal(_read(os.path.join(aug, "b.png")), _segmentation(3))
    assert np.array_equal(_read(os.path.join(aug, "c.png")), _segmentation(7))
    assert np.array_equal(_read(os.path.join(aug, "e.png")), _segmentation(11))
    # SBD train minus VOC val (Main and Segmentation): a, c. Then merged with VOC train (a).
    with open(os.path.join(voc, "ImageSets", "Segmentation", "sbd_train_noval.txt")) as f:
        assert f.read().split() == ["a", "c"]
    assert [p[0] for p in derived_pairs("pascal", voc, "train")] == [
        "JPEGImages/a.jpg", "JPEGImages/c.jpg"]
    lists = build_fold_lists("pascal", voc, 2, "train", cache_dir=cache_dir,
                             progress=False)  # fold 2: 15 is novel, so a is dropped (dagger)
    assert [os.path.basename(i) for i, _ in lists.items] == ["c.jpg"]


def test_prepare_pascal_labels(voc_sbd, tmp_path):
    voc, sbd = voc_sbd
    counts = prepare_pascal_labels(voc, sbd, progress=False)
    assert (counts["voc_written"], counts["sbd_written"]) == (2, 3)
    _check_pascal_outputs(voc, str(tmp_path / "cache"))


@pytest.mark.slow  # a subprocess; test_prepare_pascal_labels is the in-process version
def test_prepare_pascal_script(voc_sbd, tmp_path):
    voc, sbd = voc_sbd
    result = _run("prepare_pascal.py", f"--voc_root={voc}", f"--sbd_root={sbd}")
    assert result.returncode == 0, result.stderr
    assert "2 labels from VOC, 3 from SBD" in result.stdout
    _check_pascal_outputs(voc, str(tmp_path / "cache"))


def test_prepare_pascal_prefers_train_noval_and_keeps_existing(voc_sbd):
    voc, sbd = voc_sbd
    _lines(os.path.join(sbd, "train_noval.txt"), ["c"])
    counts = prepare_pascal_labels(voc, sbd, progress=False)
    assert counts["sbd_train_ids"] == 1 and "train_noval.txt" in counts["sbd_train_source"]
    again = prepare_pascal_labels(voc, sbd, progress=False)
    assert again["kept"] == 5 and again["voc_written"] == again["sbd_written"] == 0


def test_prepare_pascal_errors(voc_sbd, tmp_path):
    voc, sbd = voc_sbd
    with pytest.raises(FileNotFoundError, match=r"JPEGImages.*VOC2012 folder"):
        prepare_pascal_labels(str(tmp_path), None, progress=False)
    os.remove(os.path.join(sbd, "cls", "c.mat"))
    with pytest.raises(FileNotFoundError, match=r"c\.mat"):
        prepare_pascal_labels(voc, sbd, progress=False)
    scipy.io.savemat(os.path.join(sbd, "cls", "c.mat"), {"GTcls": {
        "Segmentation": _segmentation(33)}})
    with pytest.raises(ValueError, match=r"c\.mat.*\[33\]"):
        prepare_pascal_labels(voc, sbd, progress=False)


# Official COCO category ids: 1..90 without these ten (typed from the COCO definition).
COCO_MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}


def _coco(tmp_path):
    """COCO root with 2 annotated train images, 1 unannotated one, and 1 val image."""
    root = tmp_path / "coco"
    categories = [{"id": i, "name": f"c{i}", "supercategory": "x"}
                  for i in range(1, 91) if i not in COCO_MISSING_IDS]
    square = [[10, 10, 50, 10, 50, 40, 10, 40]]  # x, y polygon: rows 10..40, cols 10..50
    small = [[20, 20, 30, 20, 30, 30, 20, 30]]
    crowd_mask = np.zeros((48, 64), np.uint8, order="F")
    crowd_mask[0:5, 0:64] = 1
    from pycocotools import mask as mask_utils

    crowd_rle = mask_utils.encode(crowd_mask)
    crowd_rle["counts"] = crowd_rle["counts"].decode()
    files = {"train": [(1, 48, 64), (2, 48, 64), (3, 48, 64)], "val": [(7, 48, 64)]}
    annotations = {
        "train": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": square, "area": 1200.0,
             "bbox": [10, 10, 40, 30], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 90, "segmentation": small, "area": 100.0,
             "bbox": [20, 20, 10, 10], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 3, "segmentation": crowd_rle, "area": 320.0,
             "bbox": [0, 0, 64, 5], "iscrowd": 1},
            {"id": 4, "image_id": 2, "category_id": 13, "segmentation": square, "area": 1200.0,
             "bbox": [10, 10, 40, 30], "iscrowd": 0},
        ],
        "val": [{"id": 5, "image_id": 7, "category_id": 27, "segmentation": square,
                 "area": 1200.0, "bbox": [10, 10, 40, 30], "iscrowd": 0}],
    }
    (root / "annotations").mkdir(parents=True)
    for split, images in files.items():
        (root / f"{split}2014").mkdir()
        infos = []
        for image_id, height, width in images:
            name = f"COCO_{split}2014_{image_id:012d}.jpg"
            cv2.imwrite(str(root / f"{split}2014" / name), np.zeros((height, width, 3), np.uint8))
            infos.append({"id": image_id, "file_name": name, "height": height, "width": width})
        with open(root / "annotations" / f"instances_{split}2014.json", "w") as f:
            json.dump({"images": infos, "annotations": annotations[split],
                       "categories": categories}, f)
    return root


def test_coco_category_mapping():
    index = category_index([{"id": i} for i in range(1, 91) if i not in COCO_MISSING_IDS])
    assert (index[1], index[2], index[13], index[27], index[90]) == (1, 2, 12, 25, 80)
    with pytest.raises(ValueError, match="80 official"):
        category_index([{"id": i} for i in range(1, 81)])


def _check_coco_outputs(root):
    """What prepare_coco must write for the COCO root of `_coco`."""
    masks = root / "annotations" / "train2014"
    assert sorted(os.listdir(masks)) == ["COCO_train2014_000000000001.png",
                                         "COCO_train2014_000000000002.png"]
    first = _read(str(masks / "COCO_train2014_000000000001.png"))
    assert first.shape == (48, 64)
    assert first[30, 40] == 1          # person (official id 1)
    assert first[25, 25] == 80         # toothbrush (id 90), small, painted over the person
    assert first[2, 5] == 3            # crowd car, default crowd="class"
    assert first[45, 60] == 0
    assert _read(str(masks / "COCO_train2014_000000000002.png"))[30, 40] == 12  # stop sign, 13
    val = _read(str(root / "annotations" / "val2014" / "COCO_val2014_000000000007.png"))
    assert val[30, 40] == 25  # backpack (id 27)
    assert [p[1] for p in derived_pairs("coco", str(root), "train")] == [
        "annotations/train2014/COCO_train2014_000000000001.png",
        "annotations/train2014/COCO_train2014_000000000002.png"]


def test_prepare_coco_masks(tmp_path):
    root = _coco(tmp_path)
    counts = prepare_coco_masks(str(root), "train", progress=False)
    assert (counts["written"], counts["kept"], counts["without_annotations"]) == (2, 0, 1)
    prepare_coco_masks(str(root), "val", progress=False)
    _check_coco_outputs(root)


@pytest.mark.slow  # a subprocess; test_prepare_coco_masks is the in-process version
def test_prepare_coco_script(tmp_path):
    root = _coco(tmp_path)
    result = _run("prepare_coco.py", f"--coco_root={root}")
    assert result.returncode == 0, result.stderr
    assert "train: 2 masks written, 0 kept, 1 images without annotations" in result.stdout
    _check_coco_outputs(root)


def test_prepare_coco_crowd_modes_and_errors(tmp_path):
    root = _coco(tmp_path)
    mask = root / "annotations" / "train2014" / "COCO_train2014_000000000001.png"
    prepare_coco_masks(str(root), "train", crowd="ignore", progress=False)
    assert _read(str(mask))[2, 5] == 255
    prepare_coco_masks(str(root), "train", crowd="skip", overwrite=True, progress=False)
    assert _read(str(mask))[2, 5] == 0
    with pytest.raises(ValueError, match="'crowded'"):
        prepare_coco_masks(str(root), "train", crowd="crowded", progress=False)
    with pytest.raises(FileNotFoundError, match=r"instances_val2014\.json"):
        os.remove(root / "annotations" / "instances_val2014.json")
        prepare_coco_masks(str(root), "val", progress=False)
    with pytest.raises(FileNotFoundError, match=r"nowhere/train2014"):
        prepare_coco_masks(str(tmp_path / "nowhere"), "train", progress=False)
