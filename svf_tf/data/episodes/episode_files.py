"""Saving and reusing test episode lists (1000 per fold, seed 321, as BAM `train.py`, `validate`).

The reference's 1000 validation episodes depend on PyTorch's DataLoader worker
seeding, which cannot be reproduced in TensorFlow. Instead the episodes of a
(dataset, fold, shot, seed, count) are generated once and written to a JSON
Lines file that every model's evaluation then reads, so all models are
compared on identical episodes.

File format (one JSON object per line):

    {"format": "svf_tf.test_episodes.v1", "dataset": "pascal", "fold": 0,
     "split": "val", "shot": 1, "seed": 321, "count": 1000,
     "val_list_sha256": "...", "num_val_items": 364}
    {"index": 0, "query_image": "JPEGImages/2007_000033.jpg",
     "query_label": "SegmentationClassAug/2007_000033.png", "class_id": 1,
     "class_slot": 0, "support_images": [...], "support_labels": [...]}
    ...

Paths are stored relative to the common directory of the val list's files,
and the hash is taken over those relative paths, so a file made on one
machine is valid on another where the dataset lives elsewhere.
"""

import hashlib
import json
import os

from svf_tf.atomic_files import write_file_atomically
from svf_tf.data.episodes.sampling import (
    DEFAULT_TEST_EPISODES,
    DEFAULT_TEST_SEED,
    Episode,
    check_seed,
    check_shot,
    make_test_episodes,
)
from svf_tf.data.lists.fold_lists import FoldLists

FORMAT = "svf_tf.test_episodes.v1"
# Header fields that must equal the request for a file to be reused.
_KEY_FIELDS = ("format", "dataset", "fold", "split", "shot", "seed", "count", "val_list_sha256")


def list_root(fold_lists: FoldLists) -> str:
    """The deepest directory holding every file of `fold_lists.items`."""
    paths = [os.path.abspath(path) for item in fold_lists.items for path in item]
    if not paths:
        raise ValueError(
            f"The {fold_lists.split} list of {fold_lists.dataset} fold {fold_lists.fold} is empty."
        )
    root = os.path.commonpath(paths)
    # A single image and label in one folder would otherwise give a file path.
    return root if os.path.isdir(root) else os.path.dirname(root)


def val_list_hash(fold_lists: FoldLists) -> str:
    """SHA-256 of the list's (image, label) paths relative to `list_root`, in order."""
    root = list_root(fold_lists)
    digest = hashlib.sha256()
    for image, label in fold_lists.items:
        line = f"{_relative(image, root)} {_relative(label, root)}\n"
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def episode_file_name(dataset: str, fold: int, shot: int, seed: int = DEFAULT_TEST_SEED,
                      num_episodes: int = DEFAULT_TEST_EPISODES) -> str:
    """The conventional file name, e.g. "pascal_fold0_1shot_seed321_1000ep.jsonl"."""
    return f"{dataset}_fold{fold}_{shot}shot_seed{seed}_{num_episodes}ep.jsonl"


def _relative(path: str, root: str) -> str:
    return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")


def _header(fold_lists: FoldLists, shot: int, seed: int, count: int) -> dict:
    return {
        "format": FORMAT,
        "dataset": fold_lists.dataset,
        "fold": fold_lists.fold,
        "split": fold_lists.split,
        "shot": shot,
        "seed": seed,
        "count": count,
        "val_list_sha256": val_list_hash(fold_lists),
        "num_val_items": len(fold_lists.items),
    }


def write_episode_file(path: str, fold_lists: FoldLists, shot: int, seed: int,
                       episodes: list[Episode]) -> None:
    """Writes `episodes` with their header, whole or not at all (`svf_tf.atomic_files`).

    A killed run leaves the previous file or none, never a truncated one that
    a later evaluation would have to refuse.

    Args:
        path: destination .jsonl file; parent directories are created.
        fold_lists: the val lists the episodes were drawn from.
        shot: supports per episode.
        seed: the seed they were drawn with.
        episodes: the episodes, in order.

    Raises:
        OSError: the file cannot be written (naming it).
    """
    root = list_root(fold_lists)
    lines = [json.dumps(_header(fold_lists, shot, seed, len(episodes)))]
    for index, episode in enumerate(episodes):
        lines.append(json.dumps({
            "index": index,
            "query_image": _relative(episode.query[0], root),
            "query_label": _relative(episode.query[1], root),
            "class_id": episode.class_id,
            "class_slot": episode.class_slot,
            "support_images": [_relative(image, root) for image, _ in episode.supports],
            "support_labels": [_relative(label, root) for _, label in episode.supports],
        }))
    write_file_atomically(path, "\n".join(lines) + "\n")


def _read_records(path: str) -> tuple[dict, list[dict]]:
    with open(path, encoding="utf-8") as file:
        lines = [line for line in file.read().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(
                f"Episode file {path!r} line {number} is not valid JSON ({error}): delete the "
                "file to regenerate it."
            ) from error
    if not records or not isinstance(records[0], dict) or records[0].get("format") != FORMAT:
        raise ValueError(
            f"Episode file {path!r} has no {FORMAT!r} header line: it was not written by "
            "svf_tf; delete it or pass another path."
        )
    header, body = records[0], records[1:]
    if len(body) != header.get("count"):
        raise ValueError(
            f"Episode file {path!r} holds {len(body)} episodes but its header says "
            f"{header.get('count')}: it is truncated; delete it to regenerate it."
        )
    return header, body


def _episodes_from_records(path: str, body: list[dict], fold_lists: FoldLists) -> list[Episode]:
    root = list_root(fold_lists)
    episodes = []
    for record in body:
        class_id = int(record["class_id"])
        if class_id not in fold_lists.classes:
            raise ValueError(
                f"Episode file {path!r} episode {record['index']} has class {class_id}, not one "
                f"of the {fold_lists.split} classes {list(fold_lists.classes)}."
            )
        episodes.append(Episode(
            query=(os.path.join(root, record["query_image"]),
                   os.path.join(root, record["query_label"])),
            class_id=class_id,
            class_slot=fold_lists.classes.index(class_id),
            supports=tuple((os.path.join(root, image), os.path.join(root, label))
                           for image, label in zip(record["support_images"],
                                                   record["support_labels"], strict=True)),
        ))
    return episodes


def read_episode_file(path: str, fold_lists: FoldLists) -> tuple[dict, list[Episode]]:
    """Reads an episode file, resolving its paths against `fold_lists`' root.

    Only the file's own consistency is checked here (format, count, classes);
    `load_or_create_test_episodes` also compares the header with a request.

    Args:
        path: a file written by `write_episode_file`.
        fold_lists: the val lists the file refers to.

    Returns:
        (header dict, list of episodes with absolute paths).
    """
    header, body = _read_records(path)
    return header, _episodes_from_records(path, body, fold_lists)


def load_or_create_test_episodes(path: str, fold_lists: FoldLists, shot: int,
                                 seed: int = DEFAULT_TEST_SEED,
                                 num_episodes: int = DEFAULT_TEST_EPISODES) -> list[Episode]:
    """The saved test episodes at `path`, generating and saving them if absent.

    Args:
        path: episode file (see `episode_file_name` for the usual name).
        fold_lists: the val `FoldLists` of the fold.
        shot: supports per episode.
        seed: episode seed (321 default; BAM's five are `episodes.BAM_TEST_SEEDS`).
        num_episodes: number of episodes (1000 in BAM and SVF).

    Returns:
        The `num_episodes` episodes.

    Raises:
        ValueError: the file exists but was made for another dataset, fold,
            split, shot, seed, count or val list.
    """
    shot, seed = check_shot(shot), check_seed(seed)
    if not os.path.exists(path):
        episodes = make_test_episodes(fold_lists, shot, seed, num_episodes)
        write_episode_file(path, fold_lists, shot, seed, episodes)
        return episodes
    header, body = _read_records(path)
    wanted = _header(fold_lists, shot, seed, num_episodes)
    diffs = [f"{key}: file {header.get(key)!r} vs requested {wanted[key]!r}"
             for key in _KEY_FIELDS if header.get(key) != wanted[key]]
    if diffs:
        name = episode_file_name(fold_lists.dataset, fold_lists.fold, shot, seed, num_episodes)
        raise ValueError(
            f"Episode file {path!r} does not match this request ({'; '.join(diffs)}). Pass the "
            f"path for this setting, e.g. {name!r}, or delete the file to regenerate it (only "
            "if the val list really changed)."
        )
    return _episodes_from_records(path, body, fold_lists)
