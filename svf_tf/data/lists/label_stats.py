"""Per-label class pixel counts, computed once per list and cached on disk.

Building the fold lists (BAM `make_dataset`) needs, for every label of a
list, how many pixels each class covers. Reading thousands of labels is the
slow part, and the counts do not depend on the fold or on the † filter, so
they are computed once per (dataset, dataset root, list content) and kept in a
plain-text cache file, one line per label:

    <image> <label> <label size in bytes> <label mtime in ns> <class>:<pixels>,...

Every entry is re-validated against the label file's size and modification
time on each use, and recomputed if the file changed, so a stale count is
never used. The cache lives under `cache_dir`, never inside the dataset root.
"""

import concurrent.futures
import hashlib
import os

import numpy as np

from svf_tf.atomic_files import write_file_atomically
from svf_tf.data.cache import check_outside
from svf_tf.data.image_io import IGNORE_LABEL, read_label
from svf_tf.data.lists.class_splits import NUM_CLASSES
from svf_tf.data.lists.list_files import pairs_digest, resolve

CACHE_VERSION = 1
_TITLE = "svf_tf label class pixel counts"


def class_pixel_counts(label: np.ndarray) -> dict[int, int]:
    """Pixels per class in a label, background (0) and ignore (255) excluded."""
    counts = np.bincount(label.ravel(), minlength=256)
    counts[0] = counts[IGNORE_LABEL] = 0
    return {int(c): int(counts[c]) for c in np.flatnonzero(counts)}


def _format_counts(counts: dict[int, int]) -> str:
    return ",".join(f"{c}:{n}" for c, n in sorted(counts.items())) or "-"


def _parse_counts(text: str) -> dict[int, int]:
    if text == "-":
        return {}
    return {int(c): int(n) for c, n in (item.split(":") for item in text.split(","))}


def stats_cache_path(dataset: str, data_root: str, pairs, cache_dir: str) -> str:
    """The cache file for one (dataset, dataset root, list content)."""
    key = hashlib.sha256(
        f"{CACHE_VERSION}\n{dataset}\n{os.path.realpath(data_root)}\n{pairs_digest(pairs)}".encode()
    ).hexdigest()[:16]
    return os.path.join(cache_dir, "label_stats", f"{dataset}-{key}.txt")


def _read_cache(path: str) -> dict[tuple[str, str], tuple[int, int, dict[int, int]]]:
    entries = {}
    if not os.path.isfile(path):
        return entries
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                image, label, size, mtime, counts = line.split()
                entries[(image, label)] = (int(size), int(mtime), _parse_counts(counts))
    except (ValueError, UnicodeDecodeError):
        return {}  # A damaged cache file is ignored and rewritten.
    return entries


def _write_cache(path: str, header: list[str], rows: list[str]) -> None:
    """Writes the cache file whole or not at all (a killed run leaves the previous one)."""
    text = "".join(f"# {line}\n" for line in [_TITLE, *header]) + "".join(rows)
    write_file_atomically(path, text)


def _stat_entries(data_root, pairs, source):
    stats = []
    for number, (image, label) in enumerate(pairs, 1):
        if not os.path.isfile(resolve(data_root, image)):
            raise FileNotFoundError(
                f"Image {resolve(data_root, image)!r} (line {number} of {source}) does not exist: "
                "check the dataset root, or remove the line from the list."
            )
        label_path = resolve(data_root, label)
        try:
            st = os.stat(label_path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Label {label_path!r} (line {number} of {source}) does not exist: make the labels "
                "with scripts/prepare_pascal.py or scripts/prepare_coco.py, or fix the list."
            ) from None
        stats.append((st.st_size, st.st_mtime_ns))
    return stats


def list_label_stats(dataset: str, data_root: str, pairs, *, cache_dir: str, source: str,
                     progress: bool = True) -> list[dict[int, int]]:
    """Class pixel counts of every label in a list, using the on-disk cache.

    Args:
        dataset: "pascal" or "coco" (label values above its class count raise).
        data_root: absolute dataset root.
        pairs: (image, label) list entries, relative to `data_root` or absolute.
        cache_dir: root of the cache; the file goes to `cache_dir/label_stats/`.
        source: where the list came from, for error messages.
        progress: show a progress bar while labels are read.

    Returns:
        One {class: pixels} dict per entry of `pairs` (classes 1..N only).

    Raises:
        FileNotFoundError: an image or label of the list does not exist.
        ValueError: a label is unreadable or has a value outside the classes.
    """
    check_outside(cache_dir, data_root)
    file_stats = _stat_entries(data_root, pairs, source)
    path = stats_cache_path(dataset, data_root, pairs, cache_dir)
    cached = _read_cache(path)
    results: list[dict[int, int] | None] = []
    stale = []
    for index, (pair, (size, mtime)) in enumerate(zip(pairs, file_stats, strict=True)):
        entry = cached.get(pair)
        if entry is not None and entry[:2] == (size, mtime):
            results.append(entry[2])
        else:
            results.append(None)
            stale.append(index)
    if stale:
        num_classes = NUM_CLASSES[dataset]

        def count(index):
            label = read_label(resolve(data_root, pairs[index][1]), num_classes=num_classes)
            return class_pixel_counts(label)

        bar = None
        if progress:
            print(f"Reading {len(stale)} {dataset} labels (counted once, then cached in {path})")
            import keras  # only for the progress bar: the lists load without TensorFlow

            bar = keras.utils.Progbar(len(stale), unit_name="label")
        # OpenCV decodes with the GIL released, so threads read labels in parallel.
        with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            for done, (index, counts) in enumerate(
                    zip(stale, pool.map(count, stale), strict=True), 1):
                results[index] = counts
                if bar is not None and (done % 100 == 0 or done == len(stale)):
                    bar.update(done)
        rows = [
            f"{image} {label} {size} {mtime} {_format_counts(counts)}\n"
            for (image, label), (size, mtime), counts in zip(pairs, file_stats, results,
                                                             strict=True)
        ]
        _write_cache(path, [f"dataset: {dataset}", f"data_root: {os.path.realpath(data_root)}",
                            f"list: {source}", f"list sha256: {pairs_digest(pairs)}",
                            "columns: image label label_bytes label_mtime_ns class:pixels,..."],
                     rows)
    return results
