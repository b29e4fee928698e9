"""Sampling few-shot episodes (BAM/PFENet `util/dataset.py`, `SemData.__getitem__`).

An episode is a query item, one class present in its label and k support
items of that class. Training episodes are drawn on the fly, one per query
item (in an order shuffled per epoch); test episodes run through the val list
in order, cycling, and are generated once per (fold, shot, seed) so every
model sees the same ones (`episode_files` saves them).

All randomness comes from generators derived from explicit integers (seed,
stream, epoch, index), never from global state, so an episode does not depend
on how many workers build the others.
"""

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from svf_tf.data.image_io import read_label
from svf_tf.data.lists.fold_lists import FoldLists

Item = tuple[str, str]

DEFAULT_TEST_SEED = 321
# The five evaluation seeds of BAM's test.py: `setup_seed(123)` (which seeds
# NumPy) then `np.random.randint(0, 1000, 5)`, at module level.
BAM_TEST_SEEDS = (510, 365, 382, 322, 988)
DEFAULT_TEST_EPISODES = 1000

# Separate generator streams, so that e.g. the epoch order never reuses the
# draws of an episode with the same numbers.
_STREAM_TRAIN_ORDER = 0
_STREAM_TRAIN_EPISODE = 1
_STREAM_VAL_EPISODE = 2


@dataclasses.dataclass(frozen=True)
class Episode:
    """One few-shot episode.

    Attributes:
        query: (image_path, label_path) of the query.
        class_id: dataset class id of the episode's foreground class.
        class_slot: index of `class_id` in `FoldLists.classes` (the reference
            `subcls`).
        supports: k (image_path, label_path) pairs, distinct and different
            from the query.
    """

    query: Item
    class_id: int
    class_slot: int
    supports: tuple[Item, ...]

    @property
    def shot(self) -> int:
        return len(self.supports)


def check_seed(value: int, name: str = "seed") -> int:
    """Returns `value` if it is a non-negative int, else raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name}={value!r} must be a non-negative integer, e.g. 321.")
    return int(value)


def check_shot(shot: int) -> int:
    """Returns `shot` if it is an int >= 1, else raises ValueError."""
    if isinstance(shot, bool) or not isinstance(shot, int | np.integer) or shot < 1:
        raise ValueError(f"shot={shot!r} must be an integer >= 1 (1 and 5 in the paper).")
    return int(shot)


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def train_episode_order(num_items: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of the train list for one epoch.

    Args:
        num_items: length of the train list.
        seed: run seed.
        epoch: epoch number (>= 0).

    Returns:
        int64 permutation of range(num_items); episode i of the epoch uses
        item order[i] as its query.
    """
    return _rng(check_seed(seed), _STREAM_TRAIN_ORDER, check_seed(epoch, "epoch")).permutation(
        num_items
    )


def train_episode_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of training episode `index` of `epoch` (class, supports, augmentation)."""
    return _rng(check_seed(seed), _STREAM_TRAIN_EPISODE, check_seed(epoch, "epoch"),
                check_seed(index, "index"))


def val_episode_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of test episode `index` (class and supports)."""
    return _rng(check_seed(seed), _STREAM_VAL_EPISODE, check_seed(index, "index"))


def present_classes(label: np.ndarray, classes: Iterable[int]) -> tuple[int, ...]:
    """The `classes` present in `label` with any pixel count, in `classes` order.

    The 2048-pixel rule only decides list and pool membership; the candidate
    classes of an episode are re-derived from the label without it
    (BAM `SemData.__getitem__` collects every base class present, any size).
    """
    values = set(np.unique(label).tolist())
    return tuple(c for c in classes if c in values)


def choose_supports(fold_lists: FoldLists, class_id: int, query: Item, shot: int,
                    rng: np.random.Generator) -> tuple[Item, ...]:
    """Draws `shot` distinct supports of `class_id`, never the query image.

    Args:
        fold_lists: lists whose `class_pools[class_id]` holds the candidates.
        class_id: the episode's class.
        query: the query (image_path, label_path); excluded from the pool.
        shot: number of supports.
        rng: random generator.

    Returns:
        `shot` (image_path, label_path) pairs in draw order.

    Raises:
        ValueError: the pool, minus the query, has fewer than `shot` items.
    """
    pool = fold_lists.class_pools.get(class_id, ())
    # A list with a repeated line repeats its pool entries; each image counts once.
    candidates = list(dict.fromkeys(item for item in pool if item[0] != query[0]))
    if shot > len(candidates):
        raise ValueError(
            f"Cannot draw {shot} supports for class {class_id} ({fold_lists.dataset} fold "
            f"{fold_lists.fold} {fold_lists.split}): its support pool has {len(pool)} item(s), "
            f"{len(candidates)} without the query {query[0]!r}. Use a smaller shot or a "
            "dataset with more images of this class."
        )
    picks = rng.choice(len(candidates), size=shot, replace=False)
    return tuple(candidates[i] for i in picks)


def sample_episode(fold_lists: FoldLists, query: Item, query_label: np.ndarray, shot: int,
                   rng: np.random.Generator) -> Episode:
    """Draws the class (uniform among those present) and the supports of one query.

    Args:
        fold_lists: train lists (base classes) or val lists (novel classes).
        query: the query (image_path, label_path).
        query_label: its raw HxW label.
        shot: number of supports.
        rng: random generator; draws the class first, then the supports.

    Returns:
        The `Episode`.

    Raises:
        ValueError: no class of `fold_lists.classes` is in the label, or the
            chosen class's pool is too small for `shot`.
    """
    candidates = present_classes(query_label, fold_lists.classes)
    if not candidates:
        raise ValueError(
            f"Query {query[1]!r} contains none of the {fold_lists.split} classes "
            f"{list(fold_lists.classes)}: the {fold_lists.split} list of {fold_lists.dataset} "
            f"fold {fold_lists.fold} does not match its labels; rebuild the fold lists."
        )
    class_id = candidates[int(rng.integers(len(candidates)))]
    supports = choose_supports(fold_lists, class_id, query, check_shot(shot), rng)
    return Episode(query=tuple(query), class_id=class_id,
                   class_slot=fold_lists.classes.index(class_id), supports=supports)


def make_test_episodes(fold_lists: FoldLists, shot: int, seed: int = DEFAULT_TEST_SEED,
                       num_episodes: int = DEFAULT_TEST_EPISODES) -> list[Episode]:
    """The test episodes: the val list in order, cycled until `num_episodes`.

    Episode i uses query items[i % len(items)], a uniformly drawn novel class
    present in its label and `shot` supports from that class's val pool, all
    from `val_episode_rng(seed, i)`. Prefer `episode_files.load_or_create_test_episodes`,
    which saves them so every model is evaluated on the same episodes.

    Args:
        fold_lists: the val `FoldLists` of a fold.
        shot: supports per episode.
        seed: episode seed (321 by default; BAM averages `BAM_TEST_SEEDS`).
        num_episodes: number of episodes (1000 in BAM and SVF).

    Returns:
        A list of `num_episodes` episodes.
    """
    check_shot(shot)
    check_seed(seed)
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes < 1:
        raise ValueError(f"num_episodes={num_episodes!r} must be an integer >= 1, e.g. 1000.")
    if not fold_lists.items:
        raise ValueError(
            f"The {fold_lists.split} list of {fold_lists.dataset} fold {fold_lists.fold} is "
            "empty: no image has a class of this split covering >= 2048 px."
        )
    labels: dict[str, np.ndarray] = {}
    episodes = []
    for index in range(num_episodes):
        query = fold_lists.items[index % len(fold_lists.items)]
        if query[1] not in labels:
            labels[query[1]] = read_label(query[1])
        episodes.append(
            sample_episode(fold_lists, query, labels[query[1]], shot, val_episode_rng(seed, index))
        )
    return episodes


def check_episodes(episodes: Sequence[Episode]) -> None:
    """Raises ValueError if the list is empty or mixes shots."""
    if not episodes:
        raise ValueError("No episodes given: make them with episode_files.load_or_create_test_"
                         "episodes(...).")
    shots = sorted({episode.shot for episode in episodes})
    if len(shots) != 1:
        raise ValueError(f"Episodes mix shots {shots}: batch only episodes of one shot.")
