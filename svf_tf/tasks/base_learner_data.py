"""`tf.data` pipelines of BAM's stage 1: images with base annotations.

BAM `util/dataset.py` (`BaseData`) with the labels of `util/get_mulway_base_data.py`.

Training uses the fold's whole train list without the novel-image (dagger)
filter, as BAM's `BaseData`; each label is remapped on the fly
(`to_base_annotation`: base class c -> its 1-based index, other classes ->
0, 255 kept) and augmented with the stage-1 preset ("bam_base_pascal" /
"bam_base_coco": scale [0.5, 2.0], rotate +-10 with mean padding, blur, flip,
random crop with label padding 255). The crop's foreground-retention retry
counts label == 1, i.e. base index 1, as the reference's `Crop` does on
these labels. Sample i of epoch e draws from `train_episode_rng(seed, e, i)`,
so the data are the same for any parallelism or replica count.

Validation resizes every image of a list to the test canvas
(`svf_tf.data.transforms.evaluation.resize_and_pad`, label padding 255).

Element keys: `image` [B,S,S,3] float32 (normalised), `label` [B,S,S] int32.
"""

import numpy as np
import tensorflow as tf

from svf_tf.data.episodes.sampling import train_episode_order, train_episode_rng
from svf_tf.data.image_io import read_image, read_label
from svf_tf.data.lists.base_annotation import to_base_annotation
from svf_tf.data.pipeline import AUTOTUNE
from svf_tf.data.transforms.evaluation import resize_and_pad
from svf_tf.data.transforms.train import normalize, train_transform


def _load_train(item, fold_classes, augment, rng):
    image, label = read_image(item[0]), read_label(item[1])
    image, (label,) = train_transform(image, [to_base_annotation(label, fold_classes)], rng,
                                      augment)
    return image, label.astype(np.int32)


def _load_val(item, fold_classes, size):
    image, label = read_image(item[0]), read_label(item[1])
    image, (label,) = resize_and_pad(image, [to_base_annotation(label, fold_classes)], size)
    return normalize(image), label.astype(np.int32)


def _dataset(indices, load, size, batch_size, drop_remainder):
    def load_one(position, index):
        try:
            return load(int(position), int(index))
        except Exception as error:
            raise ValueError(f"Failed to load stage-1 sample {int(index)}: "
                             f"{type(error).__name__}: {error}") from error

    def map_fn(position, index):
        image, label = tf.numpy_function(load_one, [position, index], [tf.float32, tf.int32],
                                         stateful=False)
        image.set_shape([size, size, 3])
        label.set_shape([size, size])
        return {"image": image, "label": label}

    positions = np.arange(len(indices), dtype=np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((positions, np.asarray(indices, np.int64)))
    dataset = dataset.map(map_fn, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)


def make_base_train_dataset(items, fold_classes, augment, *, seed, epoch, batch_size,
                            num_samples=None):
    """One shuffled, augmented epoch of (image, base label) batches, drop_remainder.

    Args:
        items: (image, label) paths (the unfiltered train `FoldLists.items`).
        fold_classes: the fold's `FoldClasses` (base list order).
        augment: the stage-1 `AugmentConfig`.
        seed, epoch: select the order and every random draw.
        batch_size: global batch size.
        num_samples: only the first this many of the epoch's order (None: all).
    """
    order = train_episode_order(len(items), seed, epoch)[:num_samples]

    def load(position, index):
        return _load_train(items[index], fold_classes, augment,
                           train_episode_rng(seed, epoch, position))

    return _dataset(order, load, augment.crop_size, batch_size, drop_remainder=True)


def make_base_val_dataset(items, fold_classes, size, *, batch_size):
    """Every item resized onto the size x size test canvas, in order (last batch may be short)."""
    def load(position, index):
        del position
        return _load_val(items[index], fold_classes, size)

    return _dataset(np.arange(len(items)), load, size, batch_size, drop_remainder=False)
