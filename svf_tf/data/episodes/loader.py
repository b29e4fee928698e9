"""Turning an episode into arrays: read, binarise, transform (BAM `SemData.__getitem__`).

These are the NumPy/OpenCV functions that `pipeline` runs inside
`tf.numpy_function`; they can also be called directly (the tests compare
both). Each returns a dict with the pipeline's element keys:

* `query_image` [H,W,3] float32, normalised; `query_mask` [H,W] int32 in {0,1,255};
* `support_images` [K,H,W,3] float32; `support_masks` [K,H,W] int32 in {0,1,255};
* `class_id` [] int32 (dataset class id); `class_slot` [] int32 (index in
  `FoldLists.classes`);
* train, optional: `query_base_mask` [H,W] int32 (BAM base annotation);
* test: `original_mask` [L,L] int32 and `query_path` (bytes).

Support masks keep 255: the models treat `mask == 1` as foreground, so 255
(and the padding) counts as background there, while the query's 255 stays
ignored by the loss and the metric (PFENet `PFENet.forward`, BAM
`OneModel.forward`: `mask = (s_y[:,i,:,:] == 1).float()`).
"""

import numpy as np

from svf_tf.data.episodes.sampling import Episode, sample_episode
from svf_tf.data.image_io import IGNORE_LABEL, read_image, read_label
from svf_tf.data.lists.base_annotation import to_base_annotation
from svf_tf.data.lists.class_splits import FoldClasses
from svf_tf.data.lists.fold_lists import FoldLists
from svf_tf.data.transforms.evaluation import original_label_canvas, resize_and_pad
from svf_tf.data.transforms.presets import AugmentConfig
from svf_tf.data.transforms.train import normalize, train_transform


def binary_label(label: np.ndarray, class_id: int) -> np.ndarray:
    """The episode label: == class_id -> 1, == 255 -> 255, anything else -> 0.

    Other classes, including novel ones in the unfiltered training setting,
    become background (BAM `util/dataset.py`, `SemData.__getitem__`).

    Args:
        label: HxW raw class indices.
        class_id: the episode's class.

    Returns:
        HxW uint8 in {0, 1, 255}.
    """
    out = np.zeros(label.shape, np.uint8)
    out[label == class_id] = 1
    out[label == IGNORE_LABEL] = IGNORE_LABEL
    return out


def _check_size(image: np.ndarray, label: np.ndarray, item: tuple[str, str]) -> None:
    if image.shape[:2] != label.shape[:2]:
        raise ValueError(
            f"Image {item[0]!r} is {image.shape[0]}x{image.shape[1]} but its label {item[1]!r} "
            f"is {label.shape[0]}x{label.shape[1]}: the list pairs the wrong files."
        )


def _read_pair(item: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    image, label = read_image(item[0]), read_label(item[1])
    _check_size(image, label, item)
    return image, label


def load_train_episode(fold_lists: FoldLists, item_index: int, shot: int,
                       config: AugmentConfig, rng: np.random.Generator, *,
                       base_classes: FoldClasses | None = None) -> dict[str, np.ndarray]:
    """One augmented training episode whose query is `fold_lists.items[item_index]`.

    `rng` draws, in order: the class, the supports, the query augmentation
    (shared by the query label and base annotation), then each support's
    augmentation (independent draws, as `SemData.__getitem__` transforms the
    query and each support separately).

    Args:
        fold_lists: train `FoldLists` (base classes).
        item_index: index of the query in `fold_lists.items`.
        shot: supports per episode.
        config: augmentation parameters (crop size etc.).
        rng: the episode's generator, e.g. `sampling.train_episode_rng(seed, epoch, i)`.
        base_classes: if given, adds `query_base_mask`, the BAM base
            annotation of the query (`to_base_annotation`) under the query's
            geometric draw.

    Returns:
        The element dict (see the module docstring), unbatched.
    """
    query = fold_lists.items[item_index]
    image, label = _read_pair(query)
    episode = sample_episode(fold_lists, query, label, shot, rng)
    labels = [binary_label(label, episode.class_id)]
    if base_classes is not None:
        labels.append(to_base_annotation(label, base_classes).astype(np.uint8))
    query_image, query_labels = train_transform(image, labels, rng, config)
    support_images, support_masks = [], []
    for support in episode.supports:
        s_image, s_label = _read_pair(support)
        s_image, (s_mask,) = train_transform(
            s_image, [binary_label(s_label, episode.class_id)], rng, config
        )
        support_images.append(s_image)
        support_masks.append(s_mask)
    element = {
        "query_image": query_image,
        "query_mask": query_labels[0].astype(np.int32),
        "support_images": np.stack(support_images),
        "support_masks": np.stack(support_masks).astype(np.int32),
        "class_id": np.int32(episode.class_id),
        "class_slot": np.int32(episode.class_slot),
    }
    if base_classes is not None:
        element["query_base_mask"] = query_labels[1].astype(np.int32)
    return element


def load_test_episode(episode: Episode, config: AugmentConfig) -> dict[str, np.ndarray]:
    """One test episode, resized/padded to config.test_size (no randomness).

    Args:
        episode: a saved test episode.
        config: gives `test_size`.

    Returns:
        The element dict (see the module docstring), unbatched, with
        `original_mask` the query's binary label at its original resolution
        on an L x L canvas of 255, L = max(H0, W0).
    """
    image, label = _read_pair(episode.query)
    binary = binary_label(label, episode.class_id)
    query_image, (query_mask,) = resize_and_pad(image, [binary], config.test_size)
    support_images, support_masks = [], []
    for support in episode.supports:
        s_image, s_label = _read_pair(support)
        s_image, (s_mask,) = resize_and_pad(
            s_image, [binary_label(s_label, episode.class_id)], config.test_size
        )
        support_images.append(normalize(s_image))
        support_masks.append(s_mask)
    return {
        "query_image": normalize(query_image),
        "query_mask": query_mask.astype(np.int32),
        "support_images": np.stack(support_images),
        "support_masks": np.stack(support_masks).astype(np.int32),
        "class_id": np.int32(episode.class_id),
        "class_slot": np.int32(episode.class_slot),
        "original_mask": original_label_canvas(binary).astype(np.int32),
        "query_path": episode.query[0].encode("utf-8"),
    }
