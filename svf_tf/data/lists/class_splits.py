"""Fold class splits of Pascal-5i and COCO-20i (BAM `util/dataset.py`, `SemData.__init__`).

Each dataset's classes are split into 4 folds. The novel classes of fold i are
held out for few-shot testing, the other (base) classes are used for training.
The order of `FoldClasses.base` is the reference `sub_list` order: a base
class's base-learner index (BAM) is its position there plus 1
(`util/get_mulway_base_data.py`), and an
episode's `subcls` is its position in `base` (train) or `novel` (val).
"""

import dataclasses

NUM_CLASSES = {"pascal": 20, "coco": 80}
NUM_FOLDS = 4
COCO_SPLITS = ("interleaved", "contiguous")

# VOC class names by index (1..20); index 0 is background.
PASCAL_CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


@dataclasses.dataclass(frozen=True)
class FoldClasses:
    """The base and novel classes of one fold.

    Attributes:
        base: base (training) class ids, in the reference `sub_list` order.
        novel: novel (test) class ids, in the reference `sub_val_list` order.
    """

    base: tuple[int, ...]
    novel: tuple[int, ...]


def check_dataset(dataset: str) -> str:
    """Returns `dataset` if it is a known dataset name, else raises ValueError."""
    if dataset not in NUM_CLASSES:
        raise ValueError(
            f"Unknown dataset {dataset!r}: use one of {sorted(NUM_CLASSES)}."
        )
    return dataset


def check_fold(fold: int) -> int:
    """Returns `fold` if it is 0..3, else raises ValueError."""
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < NUM_FOLDS:
        raise ValueError(f"Fold {fold!r} is out of range: use an integer in 0..{NUM_FOLDS - 1}.")
    return fold


def fold_classes(dataset: str, fold: int, *, coco_split: str = "interleaved") -> FoldClasses:
    """The base and novel classes of a fold.

    Pascal-5i: fold i's novel classes are 5i+1..5i+5. COCO-20i "interleaved"
    (the reference `use_split_coco: True`, used by every published config):
    novel = every 4th id starting at i+1. COCO-20i "contiguous" (the PANet
    split, `use_split_coco: False`): novel = 20i+1..20i+20. Base classes are
    the remaining ids in ascending order in all three cases.

    Args:
        dataset: "pascal" or "coco".
        fold: 0..3.
        coco_split: "interleaved" or "contiguous"; ignored for Pascal.

    Returns:
        A `FoldClasses`.
    """
    check_dataset(dataset)
    check_fold(fold)
    if coco_split not in COCO_SPLITS:
        raise ValueError(f"Unknown coco_split {coco_split!r}: use one of {list(COCO_SPLITS)}.")
    num_classes = NUM_CLASSES[dataset]
    if dataset == "coco" and coco_split == "interleaved":
        novel = tuple(range(fold + 1, num_classes + 1, NUM_FOLDS))
    else:
        per_fold = num_classes // NUM_FOLDS
        novel = tuple(range(fold * per_fold + 1, (fold + 1) * per_fold + 1))
    novel_set = set(novel)
    base = tuple(c for c in range(1, num_classes + 1) if c not in novel_set)
    return FoldClasses(base=base, novel=novel)
