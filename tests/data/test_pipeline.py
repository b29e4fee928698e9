"""The tf.data episode pipelines: eager vs tf.data, determinism, shapes, strategy, errors."""

import dataclasses
import shutil
import types

import numpy as np
import pytest
import tensorflow as tf
from fss_toy_data import TRAIN_CLASSES, VAL_CLASSES, toy_fold_lists

from svf_tf.data import pipeline
from svf_tf.data.episodes.loader import load_test_episode, load_train_episode
from svf_tf.data.episodes.sampling import make_test_episodes, train_episode_order, train_episode_rng
from svf_tf.data.lists.class_splits import FoldClasses
from svf_tf.data.transforms.presets import augment_config
from tests.helpers import two_replica_strategy

CONFIG = augment_config("pascal", crop_size=33, test_size=41)
TOY_CLASSES = FoldClasses(base=TRAIN_CLASSES, novel=VAL_CLASSES)
SEED, EPOCH = 5, 1


@pytest.fixture(scope="module")
def train_lists(tmp_path_factory):
    return toy_fold_lists(str(tmp_path_factory.mktemp("toy")), "train", per_class=3)


@pytest.fixture(scope="module")
def val_lists(tmp_path_factory):
    return toy_fold_lists(str(tmp_path_factory.mktemp("toy")), "val", per_class=3)


def _train(lists, **kwargs):
    args = dict(seed=SEED, epoch=EPOCH, batch_size=2, num_episodes=4)
    args.update(kwargs)
    return pipeline.make_train_dataset(lists, 2, CONFIG, **args)


def _collect(dataset):
    """All batches, unbatched, as a list of {key: numpy} dicts."""
    out = []
    for batch in dataset:
        size = int(batch["class_id"].shape[0])
        out.extend({k: v[i].numpy() for k, v in batch.items()} for i in range(size))
    return out


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_train_element_equals_the_eager_python_call(train_lists):
    elements = _collect(_train(train_lists))
    order = train_episode_order(len(train_lists.items), SEED, EPOCH)
    assert len(elements) == 4
    for i, element in enumerate(elements):
        eager = load_train_episode(train_lists, int(order[i]), 2, CONFIG,
                                   train_episode_rng(SEED, EPOCH, i))
        _assert_same(element, eager)


def test_train_dataset_is_deterministic_across_iterations_and_parallelism(train_lists):
    dataset = _train(train_lists, num_parallel_calls=3)
    first = _collect(dataset)
    for other in (_collect(dataset), _collect(_train(train_lists, num_parallel_calls=1))):
        for a, b in zip(first, other, strict=True):
            _assert_same(a, b)
    reseeded = _collect(_train(train_lists, seed=SEED + 1))
    assert not np.array_equal(first[0]["query_image"], reseeded[0]["query_image"])
    next_epoch = _collect(_train(train_lists, epoch=EPOCH + 1))
    assert not np.array_equal(first[0]["query_image"], next_epoch[0]["query_image"])


def test_train_shapes_dtypes_and_values(train_lists):
    dataset = _train(train_lists, num_episodes=None, batch_size=4)
    spec = dataset.element_spec
    expected = {
        "query_image": ([4, 33, 33, 3], tf.float32), "query_mask": ([4, 33, 33], tf.int32),
        "support_images": ([4, 2, 33, 33, 3], tf.float32),
        "support_masks": ([4, 2, 33, 33], tf.int32),
        "class_id": ([4], tf.int32), "class_slot": ([4], tf.int32),
    }
    assert {k: (s.shape.as_list(), s.dtype) for k, s in spec.items()} == expected
    elements = _collect(dataset)
    assert len(elements) == 8  # 9 items, batch 4, drop_remainder
    for element in elements:
        assert set(np.unique(element["query_mask"]).tolist()) <= {0, 1, 255}
        assert set(np.unique(element["support_masks"]).tolist()) <= {0, 1, 255}
        assert element["class_id"] in TRAIN_CLASSES
        assert TRAIN_CLASSES[element["class_slot"]] == element["class_id"]
        # Each support is a 16x20 (+-10%) object: the crop retry keeps it.
        assert all(np.count_nonzero(mask == 1) > 200 for mask in element["support_masks"])


def test_query_and_each_support_get_independent_draws(train_lists, tmp_path):
    # Class 6's pool: the query plus two byte-identical copies of another
    # image. A shared augmentation draw would give identical supports.
    query = train_lists.class_pools[6][0]
    source = train_lists.class_pools[6][1]
    copies = []
    for name in ("copy_a", "copy_b"):
        copy = (str(tmp_path / f"{name}.png"), str(tmp_path / f"{name}_label.png"))
        shutil.copyfile(source[0], copy[0])
        shutil.copyfile(source[1], copy[1])
        copies.append(copy)
    pools = {**train_lists.class_pools, 6: (query, *copies)}
    lists = dataclasses.replace(train_lists, items=(query,),
                                class_pools=types.MappingProxyType(pools))
    identical, episodes_of_6 = 0, 0
    for seed in range(12):
        element = load_train_episode(lists, 0, 2, CONFIG, np.random.default_rng(seed))
        if element["class_id"] != 6:
            continue  # the query's 2x2 patch of class 7 was drawn
        episodes_of_6 += 1
        (image_a, image_b), (mask_a, mask_b) = element["support_images"], element["support_masks"]
        identical += np.array_equal(image_a, image_b) or np.array_equal(mask_a, mask_b)
        assert not np.array_equal(element["query_mask"], mask_a)
    assert episodes_of_6 >= 3 and identical == 0


def test_base_mask_shares_the_query_draw(train_lists):
    dataset = _train(train_lists, with_base_mask=True, base_classes=TOY_CLASSES)
    assert dataset.element_spec["query_base_mask"].shape.as_list() == [2, 33, 33]
    for element in _collect(dataset):
        base, query = element["query_base_mask"], element["query_mask"]
        # The episode class is base index class_slot + 1 wherever the query is 1;
        # ignore (label 255, rotation corners, padding) is 255 in both.
        assert np.all(base[query == 1] == element["class_slot"] + 1)
        np.testing.assert_array_equal(base == 255, query == 255)
        assert set(np.unique(base).tolist()) <= {0, 1, 2, 3, 255}


def test_base_mask_needs_the_lists_base_classes(train_lists):
    with pytest.raises(ValueError, match=r"base_classes.base \[6, 7, 8, 9"):
        _train(train_lists, with_base_mask=True)  # default: Pascal fold 0, bases 6..20


def test_test_dataset_matches_eager_calls_with_batch_size_1(val_lists):
    episodes = make_test_episodes(val_lists, 2, seed=321, num_episodes=5)
    dataset = pipeline.make_test_dataset(episodes, CONFIG, num_parallel_calls=2)
    spec = dataset.element_spec
    assert spec["query_image"].shape.as_list() == [1, 41, 41, 3]
    assert spec["support_masks"].shape.as_list() == [1, 2, 41, 41]
    assert spec["original_mask"].shape.as_list() == [1, None, None]
    assert spec["query_path"].dtype == tf.string
    elements = _collect(dataset)
    assert len(elements) == 5
    for element, episode in zip(elements, episodes, strict=True):
        _assert_same(element, load_test_episode(episode, CONFIG))
        assert element["query_path"].decode() == episode.query[0]
        assert element["original_mask"].shape == (48, 48)  # toy images are 40x48
        assert np.all(element["original_mask"][40:] == 255)
        # The test canvas pads the query label with 255 below the 32x40 content.
        assert np.all(element["query_mask"][32:] == 255)
        assert np.all(element["query_mask"][:, 40:] == 255)


def test_train_dataset_under_mirrored_strategy(train_lists):
    strategy = two_replica_strategy()
    dataset = _train(train_lists)
    distributed = strategy.experimental_distribute_dataset(dataset)
    expected = _collect(dataset)

    @tf.function
    def foreground_pixels(batch):
        def replica_fn(element):
            return tf.reduce_sum(tf.cast(tf.equal(element["query_mask"], 1), tf.int32))

        per_replica = strategy.run(replica_fn, args=(batch,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    seen = []
    for step, batch in enumerate(distributed):
        parts = strategy.experimental_local_results(batch["query_image"])
        assert len(parts) == 2 and all(p.shape[0] == 1 for p in parts)
        seen.extend(p[0].numpy() for p in parts)
        pair = expected[2 * step:2 * step + 2]
        total = sum(np.count_nonzero(e["query_mask"] == 1) for e in pair)
        assert int(foreground_pixels(batch)) == total
    assert len(seen) == 4
    for image, element in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(image, element["query_image"])
    rate = pipeline.measure_episodes_per_second(
        strategy.experimental_distribute_dataset(dataset), num_batches=1)
    assert rate > 0


def test_measure_episodes_per_second(train_lists):
    dataset = _train(train_lists, num_episodes=6)
    assert pipeline.measure_episodes_per_second(dataset, num_batches=2) > 0
    with pytest.raises(ValueError, match="ran out"):
        pipeline.measure_episodes_per_second(dataset, num_batches=3)


def test_bad_arguments_are_refused(train_lists, val_lists):
    with pytest.raises(ValueError, match="batch_size=5 exceeds the 4 training episodes"):
        _train(train_lists, batch_size=5)
    with pytest.raises(ValueError, match="needs the train FoldLists, got split 'val'"):
        _train(val_lists)
    with pytest.raises(ValueError, match=r"crop_size=100.*\(size - 1\) % 8 == 0"):
        pipeline.make_train_dataset(train_lists, 1, augment_config("pascal", crop_size=100))
    with pytest.raises(ValueError, match="shot=0"):
        pipeline.make_train_dataset(train_lists, 0, CONFIG)


def test_shot_larger_than_a_pool_is_refused_before_tf_data(train_lists):
    # Every toy pool holds 3 images; a query from a pool leaves 2 others.
    assert train_lists.pool_sizes() == {6: 3, 7: 3, 8: 3}
    with pytest.raises(ValueError, match=r"3-shot training needs at least 4 images.*"
                                         r"\{6: 3, 7: 3, 8: 3\}.*smaller shot"):
        pipeline.make_train_dataset(train_lists, 3, CONFIG, seed=SEED, batch_size=1)
    episodes = _collect(pipeline.make_train_dataset(train_lists, 2, CONFIG, seed=SEED,
                                                    batch_size=1))
    # One episode per list item as query, with 2 of the other 2 images of its pool.
    assert len(episodes) == len(train_lists.items)
    assert {e["support_images"].shape for e in episodes} == {(2, 33, 33, 3)}


def test_empty_pool_of_a_present_class_surfaces_from_tf_data(train_lists):
    # Class 7 stays a candidate (its rectangles and 2x2 patches are in the
    # labels) but has no support: only reading the labels could tell up front.
    pools = {**train_lists.class_pools, 7: ()}
    lists = dataclasses.replace(train_lists, class_pools=types.MappingProxyType(pools))
    dataset = pipeline.make_train_dataset(lists, 1, CONFIG, seed=SEED, batch_size=1)
    with pytest.raises(tf.errors.OpError, match=r"Cannot draw 1 supports for class 7"):
        _collect(dataset)


def _with_item(lists, index, item):
    items = list(lists.items)
    old = items[index]
    items[index] = item
    pools = {c: tuple(item if entry == old else entry for entry in pool)
             for c, pool in lists.class_pools.items()}
    return dataclasses.replace(lists, items=tuple(items),
                               class_pools=types.MappingProxyType(pools))


def test_missing_and_corrupt_files_are_named_from_inside_tf_data(train_lists, val_lists, tmp_path):
    missing = str(tmp_path / "nowhere" / "img.png")
    broken = _with_item(train_lists, 0, (missing, train_lists.items[0][1]))
    with pytest.raises(tf.errors.OpError, match=f"{missing}.*does not exist"):
        _collect(pipeline.make_train_dataset(broken, 1, CONFIG, batch_size=1))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    episodes = make_test_episodes(val_lists, 1, seed=321, num_episodes=2)
    bad = dataclasses.replace(episodes[1], supports=((str(corrupt), episodes[1].supports[0][1]),))
    dataset = pipeline.make_test_dataset([episodes[0], bad], CONFIG)
    with pytest.raises(tf.errors.OpError, match=f"test episode 1.*{corrupt}.*cannot be decoded"):
        _collect(dataset)
