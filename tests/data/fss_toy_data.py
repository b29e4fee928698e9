"""A tiny hand-made few-shot dataset for the episode and pipeline tests.

Images are 40x48 PNGs; each label holds one large rectangle of its main class
(in that class's support pool), a 1-px ring of 255 around it and a 2x2 patch
of another class of the split (present, so a candidate class, but too small
for that class's pool). Pools use a 100-px threshold instead of 2048.
"""

import os
import types

import cv2
import numpy as np

from svf_tf.data.lists.fold_lists import FoldLists

HEIGHT, WIDTH = 40, 48
POOL_MIN_PIXELS = 100
TRAIN_CLASSES = (6, 7, 8)
VAL_CLASSES = (1, 2)


def toy_label(main: int, other: int, index: int) -> np.ndarray:
    """A HEIGHTxWIDTH label: rectangle of `main` (shifted by `index`), ring of 255, 2x2 `other`."""
    label = np.zeros((HEIGHT, WIDTH), np.uint8)
    top, left = 6 + index % 5, 8 + 2 * (index % 4)
    label[top - 1:top + 17, left - 1:left + 21] = 255
    label[top:top + 16, left:left + 20] = main
    label[HEIGHT - 3:HEIGHT - 1, 1:3] = other
    return label


def write_item(root: str, name: str, label: np.ndarray, seed: int) -> tuple[str, str]:
    """Writes a random RGB image and `label`; returns their absolute paths."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "labels"), exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, label.shape + (3,), dtype=np.uint8)
    image[label != 0] //= 2  # objects a little darker, so labels and images correlate
    image_path = os.path.join(root, "images", f"{name}.png")
    label_path = os.path.join(root, "labels", f"{name}.png")
    cv2.imwrite(image_path, image)
    cv2.imwrite(label_path, label)
    return os.path.abspath(image_path), os.path.abspath(label_path)


def toy_fold_lists(root: str, split: str = "train", per_class: int = 3) -> FoldLists:
    """Writes `per_class` images per class of the split under `root`; returns its FoldLists."""
    classes = TRAIN_CLASSES if split == "train" else VAL_CLASSES
    items, labels = [], []
    for index in range(per_class * len(classes)):
        main = classes[index % len(classes)]
        other = classes[(index + 1) % len(classes)]
        label = toy_label(main, other, index)
        items.append(write_item(root, f"{split}_{index:03d}", label, seed=index))
        labels.append(label)
    pools = {c: tuple(item for item, label in zip(items, labels, strict=True)
                      if np.count_nonzero(label == c) >= POOL_MIN_PIXELS) for c in classes}
    return FoldLists(dataset="pascal", fold=0, split=split, classes=classes, items=tuple(items),
                     class_pools=types.MappingProxyType(pools))
