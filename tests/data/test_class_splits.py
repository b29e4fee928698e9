"""Fold class splits against BAM `util/dataset.py` (`SemData.__init__`), typed in here."""

import pytest

from svf_tf.data import NUM_CLASSES, fold_classes

# Pascal-5i: (novel `sub_val_list`, base in `sub_list` order).
PASCAL = {
    0: ((1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)),
    1: ((6, 7, 8, 9, 10), (1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)),
    2: ((11, 12, 13, 14, 15), (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 17, 18, 19, 20)),
    3: ((16, 17, 18, 19, 20), (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
}

# COCO-20i, use_split_coco=True: novel ids i+1, i+5, ..., i+77.
COCO_INTERLEAVED_NOVEL = {
    0: (1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77),
    1: (2, 6, 10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50, 54, 58, 62, 66, 70, 74, 78),
    2: (3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47, 51, 55, 59, 63, 67, 71, 75, 79),
    3: (4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72, 76, 80),
}
# use_split_coco=False (PANet): contiguous blocks of 20.
COCO_CONTIGUOUS_NOVEL = {0: (1, 20), 1: (21, 40), 2: (41, 60), 3: (61, 80)}


def test_num_classes():
    assert NUM_CLASSES == {"pascal": 20, "coco": 80}


@pytest.mark.parametrize("fold", range(4))
def test_pascal_folds_match_spec(fold):
    novel, base = PASCAL[fold]
    classes = fold_classes("pascal", fold)
    assert classes.novel == novel
    assert classes.base == base


@pytest.mark.parametrize("fold", range(4))
def test_coco_interleaved_folds_match_spec(fold):
    classes = fold_classes("coco", fold)  # the default: what every published config uses
    assert classes.novel == COCO_INTERLEAVED_NOVEL[fold]
    # Base: the other 60 ids, ascending (the reference's set iteration order).
    assert classes.base == tuple(c for c in range(1, 81) if c not in COCO_INTERLEAVED_NOVEL[fold])
    assert len(classes.base) == 60


@pytest.mark.parametrize("fold", range(4))
def test_coco_contiguous_folds_match_spec(fold):
    first, last = COCO_CONTIGUOUS_NOVEL[fold]
    classes = fold_classes("coco", fold, coco_split="contiguous")
    assert classes.novel == tuple(range(first, last + 1))
    assert classes.base == tuple(c for c in range(1, 81) if not first <= c <= last)


def test_coco_split_is_ignored_for_pascal():
    assert fold_classes("pascal", 2, coco_split="contiguous") == fold_classes("pascal", 2)


def test_base_learner_index_example():
    # BAM `util/get_mulway_base_data.py`: base-learner index = position in sub_list + 1.
    assert fold_classes("pascal", 1).base.index(11) + 1 == 6
    assert fold_classes("coco", 0).base.index(80) + 1 == 60


@pytest.mark.parametrize("fold", [4, -1, 1.0, True, "0"])
def test_bad_fold_is_named(fold):
    with pytest.raises(ValueError, match=r"Fold .* out of range.*0\.\.3"):
        fold_classes("pascal", fold)


def test_bad_dataset_and_split_are_named():
    with pytest.raises(ValueError, match="'voc'"):
        fold_classes("voc", 0)
    with pytest.raises(ValueError, match="'every4'"):
        fold_classes("coco", 0, coco_split="every4")
