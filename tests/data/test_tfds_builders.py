"""TFDS builders: download_and_prepare from a manual_dir, then read the shards back."""

import os

import cv2
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from svf_tf.data import ensure_synthetic_dataset, read_label  # noqa: E402
from svf_tf.data.tfds import Coco20i, Pascal5i  # noqa: E402


def _prepare(builder_class, manual_dir, data_dir):
    builder = builder_class(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def test_pascal5i_on_synthetic(tmp_path):
    root = ensure_synthetic_dataset(str(tmp_path / "voc"), num_train=5, num_val=4,
                                    min_side=128, max_side=150)
    builder = _prepare(Pascal5i, root, tmp_path / "tfds")
    for split, count in (("train", 5), ("val", 4)):
        # Images stay the original JPEG bytes (not re-encoded): read them undecoded.
        examples = list(tfds.as_numpy(builder.as_dataset(
            split=split, decoders={"image": tfds.decode.SkipDecoding()})))
        assert len(examples) == count
        names = sorted(e["file_name"].decode() for e in examples)
        assert names == [f"{split}_{i:06d}" for i in range(count)]
        for example in examples:
            name = example["file_name"].decode()
            label = read_label(os.path.join(root, "SegmentationClassAug", f"{name}.png"))
            assert example["label"].shape == label.shape + (1,)
            assert np.array_equal(example["label"][..., 0], label)
            with open(os.path.join(root, "JPEGImages", f"{name}.jpg"), "rb") as f:
                assert example["image"] == f.read()
    decoded = next(iter(tfds.as_numpy(builder.as_dataset(split="val"))))
    assert decoded["image"].dtype == np.uint8 and decoded["image"].shape[-1] == 3
    assert decoded["image"].shape[:2] == decoded["label"].shape[:2]


def test_coco20i_on_tiny_layout(tmp_path):
    root = tmp_path / "coco"
    rng = np.random.default_rng(0)
    expected = {}
    for split, ids in (("train", (3, 1)), ("val", (9,))):
        (root / f"{split}2014").mkdir(parents=True)
        (root / "annotations" / f"{split}2014").mkdir(parents=True)
        for image_id in ids:
            name = f"COCO_{split}2014_{image_id:012d}"
            label = rng.choice(np.array([0, 1, 40, 80, 255], np.uint8), size=(30, 41))
            cv2.imwrite(str(root / f"{split}2014" / f"{name}.jpg"),
                        rng.integers(0, 255, (30, 41, 3), dtype=np.uint8))
            cv2.imwrite(str(root / "annotations" / f"{split}2014" / f"{name}.png"), label)
            expected[name] = label
    # An image without a mask (no annotations) is not an example.
    cv2.imwrite(str(root / "train2014" / "COCO_train2014_000000000005.jpg"),
                np.zeros((8, 8, 3), np.uint8))
    builder = _prepare(Coco20i, root, tmp_path / "tfds")
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.splits["val"].num_examples == 1
    for split in ("train", "val"):
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            name = example["file_name"].decode()
            assert np.array_equal(example["label"][..., 0], expected[name])


def test_bad_label_fails_preparation(tmp_path):
    root = tmp_path / "coco"
    for split in ("train", "val"):
        (root / f"{split}2014").mkdir(parents=True)
        (root / "annotations" / f"{split}2014").mkdir(parents=True)
        name = f"COCO_{split}2014_000000000001"
        cv2.imwrite(str(root / f"{split}2014" / f"{name}.jpg"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(root / "annotations" / f"{split}2014" / f"{name}.png"),
                    np.full((8, 8), 81, np.uint8))
    with pytest.raises(ValueError, match=r"COCO_\w+_000000000001\.png.*\[81\]"):
        _prepare(Coco20i, root, tmp_path / "tfds")
