"""BAM base annotations (`util/get_mulway_base_data.py`) on hand-computed cases."""

import os

import cv2
import numpy as np
import pytest

from svf_tf.data import fold_classes, to_base_annotation
from svf_tf.data.lists.base_annotation import write_base_annotations


def test_pascal_fold0_by_hand():
    # Fold 0: base = 6..20 -> 1..15; novel 1..5 -> 0; 255 stays.
    label = np.array([[0, 6, 20, 1, 255], [5, 7, 13, 0, 255]], np.uint8)
    expected = np.array([[0, 1, 15, 0, 255], [0, 2, 8, 0, 255]], np.uint8)
    out = to_base_annotation(label, fold_classes("pascal", 0))
    assert out.dtype == np.uint8
    assert np.array_equal(out, expected)


def test_pascal_fold1_and_coco_by_hand():
    # Fold 1: base = 1..5, 11..20 -> 11 is the 6th base class; 6..10 are novel.
    assert to_base_annotation(np.array([11, 5, 6, 10, 20]), fold_classes("pascal", 1)).tolist() \
        == [6, 5, 0, 0, 15]
    # COCO fold 0 (interleaved): novel 1, 5, 9, ...; base 2, 3, 4, 6, ... -> 1, 2, 3, 4, ...
    coco = fold_classes("coco", 0)
    assert to_base_annotation(np.array([1, 2, 3, 4, 5, 6, 80, 255]), coco).tolist() == [
        0, 1, 2, 3, 0, 4, 60, 255]


def test_shape_is_kept_and_bad_values_refused():
    label = np.zeros((2, 3, 4), np.int32)
    assert to_base_annotation(label, fold_classes("pascal", 2)).shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r"0\.\.255.*300"):
        to_base_annotation(np.array([300]), fold_classes("pascal", 2))


def test_write_base_annotations(tmp_path):
    labels = []
    for name, label in (("a", [[6, 1], [255, 0]]), ("b", [[20, 3], [0, 0]])):
        path = str(tmp_path / f"{name}.png")
        cv2.imwrite(path, np.array(label, np.uint8))
        labels.append(path)
    out = str(tmp_path / "out" / "train" / "0")
    counts = write_base_annotations(labels, fold_classes("pascal", 0), out, progress=False)
    assert counts == {"written": 2, "kept": 0}
    assert cv2.imread(os.path.join(out, "a.png"), cv2.IMREAD_UNCHANGED).tolist() == [
        [1, 0], [255, 0]]
    assert cv2.imread(os.path.join(out, "b.png"), cv2.IMREAD_UNCHANGED).tolist() == [
        [15, 0], [0, 0]]
    again = write_base_annotations(labels, fold_classes("pascal", 0), out, progress=False)
    assert again == {"written": 0, "kept": 2}
