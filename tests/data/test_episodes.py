"""Episode sampling and saved test-episode files (BAM `SemData.__getitem__`, `validate`)."""

import dataclasses
import json
import os
import shutil
import types

import numpy as np
import pytest
from fss_toy_data import TRAIN_CLASSES, VAL_CLASSES, toy_fold_lists

from svf_tf.data.episodes import episode_files
from svf_tf.data.episodes import sampling as episodes
from svf_tf.data.image_io import read_label


@pytest.fixture(scope="module")
def train_lists(tmp_path_factory):
    return toy_fold_lists(str(tmp_path_factory.mktemp("toy")), "train", per_class=6)


@pytest.fixture(scope="module")
def val_lists(tmp_path_factory):
    return toy_fold_lists(str(tmp_path_factory.mktemp("toy")), "val", per_class=3)


def _sample(lists, index, shot, seed):
    query = lists.items[index]
    return episodes.sample_episode(lists, query, read_label(query[1]), shot,
                                   np.random.default_rng(seed))


def test_present_classes_counts_any_pixel_in_split_order():
    label = np.zeros((4, 4), np.uint8)
    label[0, 0], label[1:, 1:] = 8, 6
    label[3, 0] = 255
    assert episodes.present_classes(label, (6, 7, 8)) == (6, 8)
    assert episodes.present_classes(label, (8, 6)) == (8, 6)
    assert episodes.present_classes(label, (1, 2)) == ()


@pytest.mark.parametrize("shot", [1, 2, 5])
def test_train_episodes_are_valid(train_lists, shot):
    seen_classes = set()
    for index in range(len(train_lists.items)):
        for seed in range(4):
            episode = _sample(train_lists, index, shot, seed)
            query = train_lists.items[index]
            assert episode.query == query
            assert episode.class_id in TRAIN_CLASSES
            assert episode.class_slot == TRAIN_CLASSES.index(episode.class_id)
            assert len(episode.supports) == shot == episode.shot
            assert len({image for image, _ in episode.supports}) == shot
            assert query[0] not in [image for image, _ in episode.supports]
            assert set(episode.supports) <= set(train_lists.class_pools[episode.class_id])
            assert episode.class_id in np.unique(read_label(query[1]))
            seen_classes.add(episode.class_id)
    # The 2x2 patch of a second class is a candidate too (any size counts).
    assert seen_classes == set(TRAIN_CLASSES)


def test_class_is_uniform_over_present_classes(train_lists):
    # Every toy query holds its main class and a 2x2 patch of one other class.
    chosen = [_sample(train_lists, 0, 1, seed).class_id for seed in range(400)]
    main, other = TRAIN_CLASSES[0], TRAIN_CLASSES[1]
    assert set(chosen) == {main, other}
    assert 0.4 < chosen.count(main) / len(chosen) < 0.6


def test_query_is_never_its_own_support(train_lists):
    # Pool of class 6 has 6 items; with the query among them, a 5-shot episode
    # must take exactly the other five.
    query = train_lists.class_pools[6][0]
    pool_without_query = set(train_lists.class_pools[6][1:])
    for seed in range(20):
        supports = episodes.choose_supports(train_lists, 6, query, 5,
                                            np.random.default_rng(seed))
        assert set(supports) == pool_without_query


def test_shot_larger_than_pool_names_class_pool_and_shot(train_lists):
    query = train_lists.class_pools[6][0]
    message = r"6 supports for class 6.*pool has 6 item\(s\), 5 without"
    with pytest.raises(ValueError, match=message):
        episodes.choose_supports(train_lists, 6, query, 6, np.random.default_rng(0))
    # A query outside the pool leaves the whole pool available.
    outside = train_lists.class_pools[7][0]
    assert len(episodes.choose_supports(train_lists, 6, outside, 6, np.random.default_rng(0))) == 6


def test_supports_are_distinct_even_if_the_list_repeats_an_image(train_lists):
    # A list file with a repeated line puts that image twice into the pool.
    query, *others = train_lists.class_pools[6]
    pool = (query, others[0], others[0], others[1], others[1])
    lists = dataclasses.replace(train_lists, class_pools=types.MappingProxyType(
        {**train_lists.class_pools, 6: pool}))
    for seed in range(20):
        supports = episodes.choose_supports(lists, 6, query, 2, np.random.default_rng(seed))
        assert sorted(supports) == sorted(others[:2])
    with pytest.raises(ValueError, match="2 without the query"):
        episodes.choose_supports(lists, 6, query, 3, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_shot_must_be_a_positive_integer(train_lists, bad):
    with pytest.raises(ValueError, match="shot"):
        episodes.make_test_episodes(train_lists, bad, 321, 3)


def test_query_without_split_class_is_refused(train_lists):
    label = np.zeros((5, 5), np.uint8)
    with pytest.raises(ValueError, match="contains none of the train classes"):
        episodes.sample_episode(train_lists, train_lists.items[0], label, 1,
                                np.random.default_rng(0))


def test_train_order_is_a_per_epoch_permutation():
    order = episodes.train_episode_order(50, 321, 0)
    assert sorted(order.tolist()) == list(range(50))
    np.testing.assert_array_equal(order, episodes.train_episode_order(50, 321, 0))
    assert not np.array_equal(order, episodes.train_episode_order(50, 321, 1))
    assert not np.array_equal(order, episodes.train_episode_order(50, 322, 0))


def test_episode_generators_depend_only_on_their_keys():
    def train(seed, epoch, index):
        return episodes.train_episode_rng(seed, epoch, index).integers(0, 2**31, 4).tolist()

    assert train(321, 2, 7) == train(321, 2, 7)
    assert train(321, 2, 7) != train(321, 2, 8)
    assert train(321, 2, 7) != train(321, 3, 7)
    assert train(321, 2, 7) != train(322, 2, 7)
    assert episodes.val_episode_rng(321, 7).integers(0, 2**31, 4).tolist() != train(321, 0, 7)
    with pytest.raises(ValueError, match="seed=-1"):
        episodes.train_episode_rng(-1, 0, 0)


def test_test_episodes_cycle_the_val_list_in_order(val_lists):
    n = len(val_lists.items)
    eps = episodes.make_test_episodes(val_lists, 1, seed=321, num_episodes=2 * n + 2)
    assert len(eps) == 2 * n + 2
    assert [e.query for e in eps] == [val_lists.items[i % n] for i in range(2 * n + 2)]
    for episode in eps:
        assert episode.class_id in VAL_CLASSES
        assert episode.query[0] not in [image for image, _ in episode.supports]
        assert set(episode.supports) <= set(val_lists.class_pools[episode.class_id])


def test_base_and_novel_episodes_use_disjoint_classes(train_lists, val_lists):
    assert not set(train_lists.classes) & set(val_lists.classes)
    train_classes = {_sample(train_lists, i, 1, 0).class_id
                     for i in range(len(train_lists.items))}
    val_classes = {e.class_id for e in episodes.make_test_episodes(val_lists, 1, 0, 12)}
    assert train_classes <= set(TRAIN_CLASSES) and val_classes <= set(VAL_CLASSES)


def test_test_episodes_are_seeded(val_lists):
    first = episodes.make_test_episodes(val_lists, 2, seed=510, num_episodes=12)
    assert first == episodes.make_test_episodes(val_lists, 2, seed=510, num_episodes=12)
    assert first != episodes.make_test_episodes(val_lists, 2, seed=365, num_episodes=12)
    # Episode i does not depend on how many episodes are generated.
    assert first[:5] == episodes.make_test_episodes(val_lists, 2, seed=510, num_episodes=5)
    assert episodes.BAM_TEST_SEEDS == (510, 365, 382, 322, 988)
    assert episodes.DEFAULT_TEST_SEED == 321


def test_episode_file_is_written_readable_and_reused(val_lists, tmp_path, monkeypatch):
    path = str(tmp_path / "episodes" / episode_files.episode_file_name("pascal", 0, 2, 382, 9))
    created = episode_files.load_or_create_test_episodes(path, val_lists, 2, 382, 9)
    with open(path, encoding="utf-8") as file:
        lines = [json.loads(line) for line in file]
    header = lines[0]
    assert {k: header[k] for k in ("dataset", "fold", "split", "shot", "seed", "count")} == {
        "dataset": "pascal", "fold": 0, "split": "val", "shot": 2, "seed": 382, "count": 9}
    assert len(header["val_list_sha256"]) == 64 and len(lines) == 10
    first = lines[1]
    assert first["query_image"] == "images/val_000.png"
    assert first["class_id"] == created[0].class_id
    assert first["class_slot"] == created[0].class_slot
    assert len(first["support_images"]) == len(first["support_labels"]) == 2

    def no_regeneration(*args, **kwargs):
        raise AssertionError("the saved file should have been reused")

    monkeypatch.setattr(episode_files, "make_test_episodes", no_regeneration)
    assert episode_files.load_or_create_test_episodes(path, val_lists, 2, 382, 9) == created


@pytest.mark.parametrize("change,field", [
    (dict(shot=1), "shot"), (dict(seed=321), "seed"), (dict(num_episodes=10), "count"),
])
def test_episode_file_with_other_settings_is_refused(val_lists, tmp_path, change, field):
    path = str(tmp_path / "ep.jsonl")
    episode_files.load_or_create_test_episodes(path, val_lists, 2, 382, 9)
    request = dict(shot=2, seed=382, num_episodes=9)
    request.update(change)
    with pytest.raises(ValueError, match=rf"does not match.*{field}: file"):
        episode_files.load_or_create_test_episodes(path, val_lists, **request)


def test_episode_file_of_another_val_list_or_fold_is_refused(val_lists, tmp_path):
    path = str(tmp_path / "ep.jsonl")
    episode_files.load_or_create_test_episodes(path, val_lists, 1, 321, 4)
    shorter = dataclasses.replace(val_lists, items=val_lists.items[:-1])
    with pytest.raises(ValueError, match="val_list_sha256"):
        episode_files.load_or_create_test_episodes(path, shorter, 1, 321, 4)
    other_fold = dataclasses.replace(val_lists, fold=1)
    with pytest.raises(ValueError, match="fold: file 0 vs requested 1"):
        episode_files.load_or_create_test_episodes(path, other_fold, 1, 321, 4)


def test_truncated_or_foreign_episode_file_is_refused(val_lists, tmp_path):
    path = tmp_path / "ep.jsonl"
    episode_files.load_or_create_test_episodes(str(path), val_lists, 1, 321, 4)
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ValueError, match="holds 3 episodes but its header says 4"):
        episode_files.load_or_create_test_episodes(str(path), val_lists, 1, 321, 4)
    path.write_text("query class\n")
    with pytest.raises(ValueError, match="line 1 is not valid JSON"):
        episode_files.load_or_create_test_episodes(str(path), val_lists, 1, 321, 4)


def test_episode_file_is_valid_after_moving_the_dataset(val_lists, tmp_path):
    path = str(tmp_path / "ep.jsonl")
    original = episode_files.load_or_create_test_episodes(path, val_lists, 1, 321, 6)
    old_root = episode_files.list_root(val_lists)
    new_root = str(tmp_path / "moved")
    shutil.copytree(old_root, new_root)

    def move(item):
        return tuple(os.path.join(new_root, os.path.relpath(p, old_root)) for p in item)

    moved = dataclasses.replace(
        val_lists, items=tuple(move(item) for item in val_lists.items),
        class_pools=types.MappingProxyType(
            {c: tuple(move(item) for item in pool) for c, pool in val_lists.class_pools.items()}))
    reused = episode_files.load_or_create_test_episodes(path, moved, 1, 321, 6)
    assert [e.query for e in reused] == [move(e.query) for e in original]
    assert [e.supports for e in reused] == [tuple(move(s) for s in e.supports) for e in original]
    assert all(os.path.isfile(e.query[0]) for e in reused)
