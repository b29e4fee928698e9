"""Per-fold image lists and support pools (BAM `util/dataset.py`, `make_dataset`).

For every (image, label) of the split's list, with the label at its original
resolution:

1. The classes present are the label's values other than 0 and 255.
2. With the † filter (`filter_novel=True`, default for train), an image that
   contains any pixel of a class outside the fold's target classes (i.e. of
   a novel class, for train) is dropped entirely (`filter_intersection`;
   SVF paper Sec. 4.1 and Appendix A, Table 10).
3. A target class (base classes for train, novel classes for val) "survives"
   if it covers at least 2 * 32 * 32 = 2048 pixels.
4. The image joins the list if at least one class survives, and joins the
   support pool of every surviving class.

The slow part, counting pixels per class in every label, is cached on disk
(`label_stats`), keyed by dataset, dataset root and list content and
re-validated against each label file. The resulting lists are also written as
plain text next to that cache, named by fold and options, for people to read.
"""

import dataclasses
import os
from collections.abc import Mapping

from svf_tf.atomic_files import write_file_atomically
from svf_tf.data.cache import svf_tf_cache_dir
from svf_tf.data.lists import label_stats
from svf_tf.data.lists.class_splits import check_dataset, check_fold, fold_classes
from svf_tf.data.lists.list_files import (
    check_data_root,
    check_split,
    derived_pairs,
    pairs_digest,
    read_list_file,
    resolve,
)

# Shaban et al.'s OSLSM threshold, used by every reference (2 * 32 * 32).
MIN_CLASS_PIXELS = 2 * 32 * 32


@dataclasses.dataclass(frozen=True)
class FoldLists:
    """The list and support pools of one dataset split and fold.

    Attributes:
        dataset: "pascal" or "coco".
        fold: 0..3.
        split: "train" or "val".
        classes: the target classes, base classes for train and novel classes
            for val, in the reference order (`FoldClasses`).
        items: (image_path, label_path) pairs, absolute, in list order.
        class_pools: class id -> the items in which that class covers at least
            2048 pixels, in list order; every class of `classes` is a key.
        list_path: the plain-text copy of this list and its pools (written by
            `build_fold_lists` in the cache directory), or None.
    """

    dataset: str
    fold: int
    split: str
    classes: tuple[int, ...]
    items: tuple[tuple[str, str], ...]
    class_pools: Mapping[int, tuple[tuple[str, str], ...]]
    list_path: str | None = None

    def pool_sizes(self) -> dict[int, int]:
        """Number of images in each class's support pool, in `classes` order."""
        return {c: len(self.class_pools[c]) for c in self.classes}


def select_fold_items(pairs, counts, classes, *, filter_novel: bool,
                      min_pixels: int = MIN_CLASS_PIXELS):
    """Applies the list-membership rule of the module docstring.

    Args:
        pairs: list entries.
        counts: one {class: pixels} dict per entry (0 and 255 excluded).
        classes: the target classes.
        filter_novel: drop every entry containing a non-target class (†).
        min_pixels: minimum pixels for a class to count.

    Returns:
        (items, pools): the kept entries, and {class: entries} for `classes`.
    """
    targets = set(classes)
    items = []
    pools = {c: [] for c in classes}
    for pair, class_counts in zip(pairs, counts, strict=True):
        if filter_novel and not set(class_counts) <= targets:
            continue
        surviving = [c for c, n in class_counts.items() if c in targets and n >= min_pixels]
        if surviving:
            items.append(pair)
            for c in surviving:
                pools[c].append(pair)
    return items, pools


def _write_readable(path: str, header: list[str], items, pools) -> None:
    """Writes a fold's list as `image label` lines, then its pools as `class image label`.

    The file is written whole or not at all, and only when its text changed.
    """
    lines = [f"# {line}\n" for line in header]
    lines += [f"{image} {label}\n" for image, label in items]
    lines.append("# support pools: class image label\n")
    lines += [f"{c} {image} {label}\n" for c, pool in pools.items() for image, label in pool]
    text = "".join(lines)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    write_file_atomically(path, text)


def fold_list_path(dataset: str, data_root: str, pairs, fold: int, split: str,
                   filter_novel: bool, coco_split: str, cache_dir: str) -> str:
    """Where the readable list of a fold is written (named by every option)."""
    stats_path = label_stats.stats_cache_path(dataset, data_root, pairs, cache_dir)
    key = os.path.splitext(os.path.basename(stats_path))[0]
    option = "dagger" if filter_novel else "nofilter"
    split_name = f"-{coco_split}" if dataset == "coco" else ""
    return os.path.join(cache_dir, "fold_lists", key,
                        f"{split}_fold{fold}_{option}{split_name}.txt")


def build_fold_lists(dataset: str, data_root: str, fold: int, split: str, *,
                     list_file: str | None = None, filter_novel: bool | None = None,
                     coco_split: str = "interleaved", cache_dir: str | None = None,
                     progress: bool = True) -> FoldLists:
    """Builds (or reads from cache) the list and support pools of a fold.

    Args:
        dataset: "pascal" or "coco".
        data_root: dataset root (Pascal: the VOC2012 folder; COCO: the folder
            holding train2014/, val2014/ and annotations/).
        fold: 0..3.
        split: "train" (base classes) or "val" (novel classes).
        list_file: `image label` list file with paths relative to
            `data_root`; None derives it from the dataset's split files
            (`svf_tf.data.lists.list_files`).
        filter_novel: the † filter; None means True for train and False for
            val. False on train reproduces the original PFENet lists.
        coco_split: "interleaved" (default, every config) or "contiguous".
        cache_dir: cache root; None means the svf_tf cache directory. Must not
            be inside `data_root`.
        progress: show a progress bar while labels are read.

    Returns:
        A `FoldLists`.

    Raises:
        FileNotFoundError: the dataset root, list file, or an image or label
            of the list does not exist.
        ValueError: a bad dataset/fold/split/option, a malformed list line, or
            an unreadable label or one with a value outside the classes.
    """
    check_dataset(dataset)
    check_fold(fold)
    check_split(split)
    classes_of_fold = fold_classes(dataset, fold, coco_split=coco_split)
    data_root = check_data_root(data_root, dataset)
    cache_dir = os.path.abspath(cache_dir or svf_tf_cache_dir())
    if filter_novel is None:
        filter_novel = split == "train"
    if list_file is not None:
        pairs = read_list_file(list_file)
        source = os.path.abspath(list_file)
    else:
        pairs = derived_pairs(dataset, data_root, split)
        source = f"the {split} list derived from {data_root}"
    counts = label_stats.list_label_stats(dataset, data_root, pairs, cache_dir=cache_dir,
                                          source=source, progress=progress)
    classes = classes_of_fold.base if split == "train" else classes_of_fold.novel
    items, pools = select_fold_items(pairs, counts, classes, filter_novel=filter_novel)
    path = fold_list_path(dataset, data_root, pairs, fold, split, filter_novel, coco_split,
                          cache_dir)
    _write_readable(path, [
        f"svf_tf fold list: dataset={dataset} fold={fold} split={split} "
        f"filter_novel={filter_novel} coco_split={coco_split}",
        f"data_root: {data_root}", f"list: {source}", f"list sha256: {pairs_digest(pairs)}",
        f"classes: {list(classes)}", f"{len(items)} images; paths as in the list",
    ], items, pools)

    def absolute(entries):
        return tuple((resolve(data_root, i), resolve(data_root, lb))
                     for i, lb in entries)

    return FoldLists(
        dataset=dataset, fold=fold, split=split, classes=tuple(classes),
        items=absolute(items),
        class_pools={c: absolute(pools[c]) for c in classes}, list_path=path,
    )
