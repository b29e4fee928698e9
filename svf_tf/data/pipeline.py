"""`tf.data` pipelines of few-shot episodes (BAM `util/dataset.py`, `SemData`).

Decoding and augmentation run in NumPy/OpenCV (`episode_loader`) inside
`tf.numpy_function`, in parallel (`num_parallel_calls`) but with
`deterministic=True`. Each episode's randomness depends only on (seed, epoch,
episode index), so the output is identical for any parallelism and any
number of replicas. The datasets work with
`strategy.experimental_distribute_dataset`.

Element keys (dicts, batched): `query_image` [B,H,W,3] float32,
`query_mask` [B,H,W] int32, `support_images` [B,K,H,W,3] float32,
`support_masks` [B,K,H,W] int32, `class_id` [B] int32, `class_slot` [B] int32;
training with `with_base_mask=True` adds `query_base_mask` [B,H,W] int32;
test adds `original_mask` [B,L,L] int32 and `query_path` [B] string.

Test datasets always have batch size 1, as in the reference: `original_mask`
is L x L with L = max(H0, W0) of each query's original image, so episodes
cannot be stacked (BAM `train.py`, `validate`, indexes batch element 0).
"""

import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from svf_tf.data.episodes.loader import load_test_episode, load_train_episode
from svf_tf.data.episodes.sampling import (
    Episode,
    check_episodes,
    check_seed,
    check_shot,
    train_episode_order,
    train_episode_rng,
)
from svf_tf.data.lists.class_splits import FoldClasses, fold_classes
from svf_tf.data.lists.fold_lists import FoldLists
from svf_tf.data.sharding import worker_elements
from svf_tf.data.transforms.presets import AugmentConfig, augment_config

AUTOTUNE = tf.data.AUTOTUNE

_COMMON_KEYS = ("query_image", "query_mask", "support_images", "support_masks", "class_id",
                "class_slot")
_DTYPES = {
    "query_image": tf.float32, "query_mask": tf.int32, "support_images": tf.float32,
    "support_masks": tf.int32, "class_id": tf.int32, "class_slot": tf.int32,
    "query_base_mask": tf.int32, "original_mask": tf.int32, "query_path": tf.string,
}


def _shapes(size: int, shot: int) -> dict[str, list]:
    return {
        "query_image": [size, size, 3], "query_mask": [size, size],
        "support_images": [shot, size, size, 3], "support_masks": [shot, size, size],
        "class_id": [], "class_slot": [], "query_base_mask": [size, size],
        "original_mask": [None, None], "query_path": [],
    }


def _as_python_function(load, keys: tuple[str, ...], describe):
    """Wraps `load(*args) -> dict` as a tuple-returning function for `tf.numpy_function`.

    Errors are re-raised with the episode's description so that, once
    TensorFlow has wrapped them, the message still says which file failed.
    """

    def function(*args):
        try:
            element = load(*args)
        except Exception as error:
            raise ValueError(f"Failed to load {describe(*args)}: "
                             f"{type(error).__name__}: {error}") from error
        return tuple(element[key] for key in keys)

    return function


def _map_to_dict(dataset: tf.data.Dataset, function, keys, shapes, num_parallel_calls):
    def map_fn(*args):
        values = tf.numpy_function(function, list(args), [_DTYPES[key] for key in keys],
                                   stateful=False)
        element = {}
        for key, value in zip(keys, values, strict=True):
            value.set_shape(shapes[key])
            element[key] = value
        return element

    return dataset.map(map_fn, num_parallel_calls=num_parallel_calls, deterministic=True)


def check_pools_hold_shot(fold_lists: FoldLists, shot: int) -> None:
    """Raises ValueError if some class's support pool is too small for `shot`.

    Every member of a class's pool is a query whose label holds that class, so
    an episode that takes it as query and picks that class needs `shot` other
    images from the pool: a pool of 1..shot images fails sooner or later. It is
    checked here, before training starts, because inside `tf.data` the error
    would only surface mid-epoch, wrapped in a TensorFlow error. (An empty pool
    is allowed: its class can still appear as a small patch, which fails when
    drawn, but only reading the labels could tell.)

    Args:
        fold_lists: train `FoldLists`.
        shot: supports per episode.
    """
    sizes = {c: len(set(fold_lists.class_pools.get(c, ()))) for c in fold_lists.classes}
    small = {c: n for c, n in sizes.items() if 0 < n <= shot}
    if small:
        raise ValueError(
            f"{shot}-shot training needs at least {shot + 1} images in every support pool, but "
            f"{fold_lists.dataset} fold {fold_lists.fold} {fold_lists.split} has class(es) with "
            f"fewer: {{class: pool size}} = {small}. Use a smaller shot, or a train list with "
            "more images of these classes (scripts/make_lists.py prints the pool sizes)."
        )


def make_train_dataset(
    fold_lists: FoldLists,
    shot: int,
    preset_or_config: "str | AugmentConfig" = "pascal",
    *,
    seed: int = 321,
    epoch: int = 0,
    batch_size: int = 8,
    num_episodes: int | None = None,
    with_base_mask: bool = False,
    base_classes: FoldClasses | None = None,
    num_parallel_calls: int = AUTOTUNE,
    prefetch: int = AUTOTUNE,
    input_context: tf.distribute.InputContext | None = None,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """One epoch of augmented training episodes, batched with drop_remainder.

    The train list is shuffled per epoch (`sampling.train_episode_order`);
    episode i of the epoch takes its query from that order and all its draws
    from `sampling.train_episode_rng(seed, epoch, i)`.

    Args:
        fold_lists: train `FoldLists` of a fold (base classes).
        shot: supports per episode (k >= 1).
        preset_or_config: "pascal", "coco", "bam_base_pascal", "bam_base_coco"
            or an `AugmentConfig` (e.g. `augment_config("pascal", crop_size=129)`).
        seed: run seed.
        epoch: epoch number; selects the shuffle and the augmentation draws.
        batch_size: global batch size (split across replicas by a strategy).
        num_episodes: if given, only the first `num_episodes` of the epoch's
            order (short CPU runs); default: the whole list.
        with_base_mask: add `query_base_mask` (BAM).
        base_classes: the fold's classes for the base annotation; default
            `fold_classes(fold_lists.dataset, fold_lists.fold)`, which must
            have `fold_lists.classes` as its base classes (pass it explicitly
            for the contiguous COCO split).
        num_parallel_calls: parallel episode loaders (AUTOTUNE by default).
        prefetch: batches to prefetch (AUTOTUNE by default; 0 disables).
        input_context: for one worker of a multi-worker job: only this
            worker's episodes are loaded, in per-replica batches
            (`svf_tf.data.sharding`); each episode is the one a single process
            would make (its draws depend on its position in the epoch).
        skip_batches: global batches of the epoch to leave out (a resumed epoch).

    Returns:
        A `tf.data.Dataset` of dicts (see the module docstring).
    """
    config = augment_config(preset_or_config)
    shot, seed, epoch = check_shot(shot), check_seed(seed), check_seed(epoch, "epoch")
    if fold_lists.split != "train":
        raise ValueError(f"make_train_dataset needs the train FoldLists, got split "
                         f"{fold_lists.split!r}.")
    check_pools_hold_shot(fold_lists, shot)
    order = train_episode_order(len(fold_lists.items), seed, epoch)
    if num_episodes is not None:
        if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes < 1:
            raise ValueError(f"num_episodes={num_episodes!r} must be an integer >= 1 or None.")
        order = order[:num_episodes]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1.")
    if batch_size > len(order):
        raise ValueError(
            f"batch_size={batch_size} exceeds the {len(order)} training episodes of the epoch: "
            "with drop_remainder the epoch would be empty; use a smaller batch."
        )
    if with_base_mask and base_classes is None:
        base_classes = fold_classes(fold_lists.dataset, fold_lists.fold)
    if with_base_mask and tuple(base_classes.base) != tuple(fold_lists.classes):
        raise ValueError(
            f"base_classes.base {list(base_classes.base)} differs from the train list's classes "
            f"{list(fold_lists.classes)}: pass the FoldClasses the lists were built with."
        )
    keys = _COMMON_KEYS + (("query_base_mask",) if with_base_mask else ())

    def load(position, item_index):
        return load_train_episode(
            fold_lists, int(item_index), shot, config,
            train_episode_rng(seed, epoch, int(position)),
            base_classes=base_classes if with_base_mask else None,
        )

    def describe(position, item_index):
        image, label = fold_lists.items[int(item_index)]
        return (f"training episode {int(position)} of epoch {epoch} (query {image!r}, "
                f"label {label!r})")

    positions = np.arange(len(order), dtype=np.int64)
    if input_context is not None:
        positions = worker_elements(len(order) // batch_size, batch_size, input_context,
                                    skip_batches)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    elif skip_batches:
        positions = positions[skip_batches * batch_size:]
    dataset = tf.data.Dataset.from_tensor_slices((positions, order[positions].astype(np.int64)))
    dataset = _map_to_dict(dataset, _as_python_function(load, keys, describe), keys,
                           _shapes(config.crop_size, shot), num_parallel_calls)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(prefetch) if prefetch else dataset


def make_test_dataset(
    episodes: Sequence[Episode],
    preset_or_config: "str | AugmentConfig" = "pascal",
    *,
    num_parallel_calls: int = AUTOTUNE,
    prefetch: int = AUTOTUNE,
) -> tf.data.Dataset:
    """Saved test episodes, resized/padded, in order, batch size 1.

    Args:
        episodes: from `episode_files.load_or_create_test_episodes`.
        preset_or_config: a preset name or an `AugmentConfig` (its
            `test_size` is used).
        num_parallel_calls: parallel episode loaders (AUTOTUNE by default).
        prefetch: batches to prefetch (AUTOTUNE by default; 0 disables).

    Returns:
        A `tf.data.Dataset` of dicts with a leading batch dimension of 1.
    """
    config = augment_config(preset_or_config)
    episodes = list(episodes)
    check_episodes(episodes)
    keys = _COMMON_KEYS + ("original_mask", "query_path")

    def load(index):
        return load_test_episode(episodes[int(index)], config)

    def describe(index):
        episode = episodes[int(index)]
        return (f"test episode {int(index)} (query {episode.query[0]!r}, supports "
                f"{[image for image, _ in episode.supports]})")

    dataset = tf.data.Dataset.range(len(episodes))
    dataset = _map_to_dict(dataset, _as_python_function(load, keys, describe), keys,
                           _shapes(config.test_size, episodes[0].shot), num_parallel_calls)
    dataset = dataset.batch(1, drop_remainder=True)  # static batch dim 1
    return dataset.prefetch(prefetch) if prefetch else dataset


def measure_episodes_per_second(dataset, num_batches: int, warmup_batches: int = 1) -> float:
    """Throughput of a (possibly distributed) episode dataset.

    Args:
        dataset: a dataset from this module, or its distributed version.
        num_batches: batches to time after the warm-up.
        warmup_batches: batches consumed first and not timed (start-up of the
            worker threads and of AUTOTUNE).

    Returns:
        Episodes per second over the timed batches.
    """
    if num_batches < 1:
        raise ValueError(f"num_batches={num_batches!r} must be >= 1.")
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    episodes = 0
    start = time.perf_counter()
    for _ in range(num_batches):
        try:
            batch = next(iterator)
        except StopIteration as error:
            raise ValueError(
                f"The dataset ran out after fewer than {warmup_batches + num_batches} batches: "
                "ask for fewer num_batches."
            ) from error
        episodes += _batch_size(batch["class_id"])
    return episodes / (time.perf_counter() - start)


def _batch_size(class_ids) -> int:
    # A distributed dataset yields PerReplica values; count all replicas.
    if isinstance(class_ids, tf.distribute.DistributedValues):
        values = class_ids.values
    else:
        values = (class_ids,)
    return int(sum(int(tf.shape(value)[0]) for value in values))
