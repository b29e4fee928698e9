"""End to end on the built-in synthetic dataset: fold lists -> episodes -> tf.data."""

import numpy as np
import pytest

from svf_tf.data import pipeline
from svf_tf.data.episodes.episode_files import episode_file_name, load_or_create_test_episodes
from svf_tf.data.lists.class_splits import fold_classes
from svf_tf.data.lists.fold_lists import build_fold_lists
from svf_tf.data.synthetic.dataset import ensure_synthetic_dataset
from svf_tf.data.transforms.presets import augment_config


@pytest.fixture(scope="module")
def synthetic_lists(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synthetic")
    root = ensure_synthetic_dataset(str(tmp / "data"), num_train=160, num_val=60, min_side=128,
                                    max_side=160)
    cache = str(tmp / "cache")
    return tuple(build_fold_lists("pascal", root, 0, split, cache_dir=cache, progress=False)
                 for split in ("train", "val"))


def test_synthetic_fold_end_to_end(synthetic_lists, tmp_path):
    train_lists, val_lists = synthetic_lists
    classes = fold_classes("pascal", 0)
    config = augment_config("pascal", crop_size=65, test_size=65)

    train = pipeline.make_train_dataset(train_lists, 1, config, seed=321, epoch=0, batch_size=2,
                                        num_episodes=4, with_base_mask=True)
    for batch in train:
        assert batch["query_image"].shape == (2, 65, 65, 3)
        assert set(batch["class_id"].numpy().tolist()) <= set(classes.base)
        query, base = batch["query_mask"].numpy(), batch["query_base_mask"].numpy()
        for i, slot in enumerate(batch["class_slot"].numpy()):
            assert np.all(base[i][query[i] == 1] == slot + 1)

    path = str(tmp_path / episode_file_name("pascal", 0, 1, 321, 20))
    episodes = load_or_create_test_episodes(path, val_lists, 1, seed=321, num_episodes=20)
    assert [e.query for e in episodes[:15]] == list(val_lists.items)  # in order, then cycled
    assert episodes[15].query == val_lists.items[0]
    assert all(e.class_id in classes.novel for e in episodes)
    test = pipeline.make_test_dataset(episodes[:3], config)
    for batch, episode in zip(test, episodes[:3], strict=True):
        assert batch["query_path"].numpy()[0].decode() == episode.query[0]
        side = batch["original_mask"].shape[1]
        assert batch["original_mask"].shape == (1, side, side) and 128 <= side <= 160
        assert np.any(batch["support_masks"].numpy() == 1)
