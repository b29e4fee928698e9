"""Every writer of svf_tf.data leaves the previous file (or none) when a write fails.

A full disk is simulated in the middle of the write (`disk_full.fill_disk`):
the temporary file is half-written when the error comes. After it, the
target must hold exactly its previous bytes (or not exist), no temporary may
be left, and the error must be an OSError naming the target.
"""

import errno
import json
import os

import cv2
import numpy as np
import pytest
from fss_toy_data import toy_fold_lists

from svf_tf.data import build_fold_lists, fold_classes
from svf_tf.data.episodes import episode_files
from svf_tf.data.image_io import write_image
from svf_tf.data.lists import label_stats
from svf_tf.data.lists.base_annotation import write_base_annotations
from svf_tf.data.lists.list_files import read_list_file, write_list_file
from svf_tf.data.synthetic import dataset as synthetic
from tests.data.disk_full import fill_disk, leftovers

OLD = b"previous content\n"


def _assert_disk_full_error(error, path):
    assert error.value.errno == errno.ENOSPC
    assert os.path.abspath(error.value.filename) == os.path.abspath(path)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data=OLD):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_list_file_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = str(tmp_path / "lists" / "train.txt")
    pairs = [("JPEGImages/a.jpg", "SegmentationClassAug/a.png")] * 50
    write_list_file(path, pairs)
    assert read_list_file(path) == pairs
    _write(path)
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        write_list_file(path, pairs)
    _assert_disk_full_error(error, path)
    assert _read(path) == OLD and leftovers(tmp_path) == []
    with pytest.raises(OSError):
        write_list_file(str(tmp_path / "new.txt"), pairs)
    assert sorted(os.listdir(tmp_path)) == ["lists"]


def test_write_image_round_trip_and_failures(tmp_path, monkeypatch):
    label = np.arange(48, dtype=np.uint8).reshape(6, 8)
    path = str(tmp_path / "labels" / "a.png")
    write_image(path, label)
    np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), label)
    with pytest.raises(ValueError, match=r"\.xyz.*use a \.png or \.jpg path"):
        write_image(str(tmp_path / "a.xyz"), label)
    written = _read(path)
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        write_image(path, label + 1)
    _assert_disk_full_error(error, path)
    assert _read(path) == written and leftovers(tmp_path) == []


@pytest.fixture
def dataset(tmp_path):
    """A 3-image Pascal-layout dataset outside the cache: (root, list file, cache dir)."""
    root = tmp_path / "data"
    for sub in ("JPEGImages", "SegmentationClassAug"):
        (root / sub).mkdir(parents=True)
    for index in range(3):
        label = np.zeros((64, 64), np.uint8)
        label.flat[:3000] = 6
        cv2.imwrite(str(root / "SegmentationClassAug" / f"{index}.png"), label)
        cv2.imwrite(str(root / "JPEGImages" / f"{index}.jpg"), np.zeros((64, 64, 3), np.uint8))
    list_file = tmp_path / "list.txt"
    list_file.write_text("".join(f"JPEGImages/{i}.jpg SegmentationClassAug/{i}.png\n"
                                 for i in range(3)))
    return str(root), str(list_file), str(tmp_path / "cache")


def test_label_stats_cache_keeps_its_previous_version(dataset, monkeypatch):
    root, list_file, cache = dataset
    pairs = read_list_file(list_file)
    counts = label_stats.list_label_stats("pascal", root, pairs, cache_dir=cache,
                                          source=list_file, progress=False)
    assert counts == [{6: 3000}] * 3
    path = label_stats.stats_cache_path("pascal", root, pairs, cache)
    cached = _read(path)
    # A changed label makes the counts stale, so the cache is written again: the disk is full.
    label_path = os.path.join(root, "SegmentationClassAug", "1.png")
    cv2.imwrite(label_path, np.full((64, 64), 7, np.uint8))
    os.utime(label_path, ns=(1, 1))
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        label_stats.list_label_stats("pascal", root, pairs, cache_dir=cache, source=list_file,
                                     progress=False)
    _assert_disk_full_error(error, path)
    assert _read(path) == cached and leftovers(cache) == []


def test_readable_fold_list_keeps_its_previous_version(dataset, monkeypatch):
    root, list_file, cache = dataset
    lists = build_fold_lists("pascal", root, 0, "train", list_file=list_file, cache_dir=cache,
                             progress=False)
    with open(lists.list_path, encoding="utf-8") as f:
        assert f.read().count("JPEGImages/") == 6  # 3 list lines, 3 pool lines
    _write(lists.list_path)  # differs from the fold's text, so it is written again
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        build_fold_lists("pascal", root, 0, "train", list_file=list_file, cache_dir=cache,
                         progress=False)
    _assert_disk_full_error(error, lists.list_path)
    assert _read(lists.list_path) == OLD and leftovers(cache) == []


@pytest.fixture(scope="module")
def val_lists(tmp_path_factory):
    return toy_fold_lists(str(tmp_path_factory.mktemp("toy")), "val", per_class=3)


def test_episode_file_is_written_whole_or_not_at_all(val_lists, tmp_path, monkeypatch):
    path = str(tmp_path / "episodes" / "ep.jsonl")
    episodes = episode_files.load_or_create_test_episodes(path, val_lists, 1, 321, 5)
    written = _read(path)
    assert json.loads(written.splitlines()[0])["count"] == 5
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        episode_files.write_episode_file(path, val_lists, 1, 321, episodes[:3])
    _assert_disk_full_error(error, path)
    assert _read(path) == written
    fresh = str(tmp_path / "episodes" / "fresh.jsonl")
    with pytest.raises(OSError):
        episode_files.load_or_create_test_episodes(fresh, val_lists, 1, 321, 5)
    assert not os.path.exists(fresh) and leftovers(tmp_path) == []


def test_base_annotations_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    label_path = str(tmp_path / "a.png")
    cv2.imwrite(label_path, np.array([[6, 1], [255, 0]], np.uint8))
    out = str(tmp_path / "base" / "train" / "0")
    write_base_annotations([label_path], fold_classes("pascal", 0), out, progress=False)
    target = os.path.join(out, "a.png")
    written = _read(target)
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        write_base_annotations([label_path], fold_classes("pascal", 0), out, overwrite=True,
                               progress=False)
    _assert_disk_full_error(error, target)
    assert _read(target) == written and leftovers(tmp_path) == []


SMALL = dict(num_train=4, num_val=3, min_side=128, max_side=136)


def _manifest_options(root):
    with open(os.path.join(root, "svf_tf_synthetic.json"), encoding="utf-8") as f:
        return json.load(f)["options"]


def test_synthetic_dataset_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch):
    root = str(tmp_path / "syn")
    synthetic.ensure_synthetic_dataset(root, seed=1, **SMALL)
    before = sorted(os.listdir(os.path.join(root, "JPEGImages")))
    fill_disk(monkeypatch)
    with pytest.raises(OSError) as error:
        synthetic.ensure_synthetic_dataset(root, seed=2, **SMALL)
    assert error.value.errno == errno.ENOSPC
    assert error.value.filename.endswith(".jpg")  # the image that did not fit
    assert _manifest_options(root)["seed"] == 1
    assert sorted(os.listdir(os.path.join(root, "JPEGImages"))) == before
    assert os.listdir(tmp_path) == ["syn"], "no staging or replaced copy may be left"
    with pytest.raises(OSError):
        synthetic.ensure_synthetic_dataset(str(tmp_path / "new"), **SMALL)
    assert os.listdir(tmp_path) == ["syn"]


def test_interrupted_synthetic_generation_leaves_nothing(tmp_path, monkeypatch):
    real_render = synthetic.render_scene
    calls = []

    def render_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C with two images written
        return real_render(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_scene", render_then_interrupt)
    root = str(tmp_path / "syn")
    with pytest.raises(KeyboardInterrupt):
        synthetic.ensure_synthetic_dataset(root, **SMALL)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    synthetic.ensure_synthetic_dataset(root, **SMALL)
    assert len(os.listdir(os.path.join(root, "JPEGImages"))) == SMALL["num_train"] + \
        SMALL["num_val"]


def test_a_dataset_published_meanwhile_by_another_process_is_kept(tmp_path, monkeypatch):
    root = str(tmp_path / "syn")
    real_generate = synthetic.generate_synthetic_dataset
    theirs = {}

    def generate_while_another_process_publishes(out, options):
        real_generate(out, options)
        other = str(tmp_path / "other_process")
        real_generate(other, options)
        os.rename(other, root)
        theirs["inode"] = os.stat(root).st_ino

    monkeypatch.setattr(synthetic, "generate_synthetic_dataset",
                        generate_while_another_process_publishes)
    assert synthetic.ensure_synthetic_dataset(root, **SMALL) == root
    assert os.stat(root).st_ino == theirs["inode"], "their dataset, which may be in use, stays"
    assert os.listdir(tmp_path) == ["syn"]
