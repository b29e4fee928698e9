"""The pre-training corpus: the offline stand-in for ImageNet, drawn from the scene generator.

The SVF paper adapts an ImageNet backbone: one trained on a broad task whose
classes include objects like the novel ones. Here the broad task is all
10 x 10 (shape, texture) pairs of `svf_tf.data.synthetic.scene` (100
classes), of which the few-shot dataset uses 20 (`class_design`), so the
corpus holds objects like the novel classes, as ImageNet does for Pascal.
Each image is one `render_scene` (the few-shot dataset's backgrounds,
clutter, random colour pairs and lighting, sizes, rotations and texture
periods, on a 160-320 px scene) with 1 to `max_objects` objects of uniformly
drawn classes, cut to an object-centric square around its main object
(`object_crop`, 1.2-2x the object's size, as ImageNet images are
object-centric) and resized to `size` x `size`, normalised as the backbone's
input (`normalize`). Nothing is written to disk: image `index` of stream
`stream` is a function of (seed, stream, index) only, so a batch is a
function of (seed, step) and a resumed run sees the data it would have seen;
stream 0 trains, stream 1 is the held-out validation set.

Targets (`TARGETS`; the heads are `svf_tf.tasks.synthetic_pretrain_model`):
- "dense": the per-pixel class, 0 background, 1..100 the object's pair, 255
  on boundary rings: per-pixel shape and texture from two 1x1 heads on
  layer4, upsampled.
- "classification": the main object's class, 0..99: its shape and texture
  from layer4 pooled.

Dense is the default because it transfers better to few-shot segmentation.
Measured with the PFENet prior mask (cosine similarity of query layer4
features to the masked support's, max over the support, min-max normalised,
thresholded at 0.5: a segmentation made by the features alone,
`tests/tasks/prior_transfer.py`) on the few-shot dataset's novel classes of
fold 0, 1-shot, 300 test episodes at 65 px, with ResNet-50 (Keras stem,
torchvision dilation) after the default pre-training (65 px, batch 8, 600
steps, 14 minutes on 2 CPU cores): mIoU 26.3 after dense pre-training, 11.8
after classification (whose loss stayed at chance: two 10-way decisions on
pooled features learn too slowly from scratch), 15.1 and 14.7 for two random
initialisations ("all foreground": 12.0). A dense target trains every
layer4 position to name the object under it, which is what the prior (and
the few-shot heads) compare; an image label trains only the pooled vector.
"""

import dataclasses

import cv2
import numpy as np
import tensorflow as tf

from svf_tf.constants import PRETRAIN_TARGETS as TARGETS
from svf_tf.data.synthetic.scene import SHAPES, TEXTURES, class_design, render_scene
from svf_tf.data.transforms.train import normalize

#: Version of the corpus (classes, image recipe, streams); part of every cache key.
CORPUS_VERSION = 1
NUM_PRETRAIN_CLASSES = len(SHAPES) * len(TEXTURES)
#: Scene sides in pixels before the resize: the few-shot dataset's.
SIDE_RANGE = (160, 320)
#: Labelled pixels the main object keeps at least (at the scene's size).
MAIN_MIN_PIXELS = 1024
#: Crop side / the main object's longer bounding-box side (object-centric crops).
CROP_ZOOM = (1.2, 2.0)
TRAIN_STREAM, VAL_STREAM = 0, 1


def pretrain_class_design(class_id: int) -> tuple[str, str]:
    """The (shape, texture) of corpus class 1..100: shape (id-1) // 10, texture (id-1) % 10."""
    if not 1 <= class_id <= NUM_PRETRAIN_CLASSES:
        raise ValueError(f"Corpus class {class_id!r} is not in 1..{NUM_PRETRAIN_CLASSES}.")
    index = class_id - 1
    return SHAPES[index // len(TEXTURES)], TEXTURES[index % len(TEXTURES)]


def corpus_class_of(few_shot_class: int) -> int:
    """The corpus class (1..100) of a few-shot dataset class (1..20): the same pair."""
    shape, texture = class_design(few_shot_class)
    return 1 + SHAPES.index(shape) * len(TEXTURES) + TEXTURES.index(texture)


@dataclasses.dataclass(frozen=True)
class CorpusOptions:
    """What the corpus draws.

    Attributes:
        size: side of the square images (the backbone's input), e.g. 65.
        max_objects: objects per image, drawn uniformly from 1..max_objects
            (1: single-object images only).
        target: one of `TARGETS`.
        seed: the corpus is a function of (seed, stream, index).
    """

    size: int = 65
    max_objects: int = 4
    target: str = "dense"
    seed: int = 0

    def __post_init__(self):
        if self.size < 17:
            raise ValueError(f"Corpus size={self.size!r} must be >= 17 (the backbone's input).")
        if self.max_objects < 1:
            raise ValueError(f"Corpus max_objects={self.max_objects!r} must be >= 1.")
        if self.target not in TARGETS:
            raise ValueError(f"Corpus target={self.target!r}: use one of {TARGETS}.")


def render_corpus_image(options: CorpusOptions, stream: int, index: int):
    """Image `index` of `stream`: (normalised float32 [size, size, 3], labels, main class).

    Returns:
        (image, dense label uint8 [size, size] with 0..100 and 255, main
        class 1..100).
    """
    rng = np.random.default_rng([options.seed, stream, index])
    height, width = (int(s) for s in rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1, 2))
    classes = rng.integers(1, NUM_PRETRAIN_CLASSES + 1,
                           int(rng.integers(1, options.max_objects + 1)))
    main = int(classes[0])
    image, label = render_scene(rng, height, width, main,
                                extra_classes=[int(c) for c in classes[1:]],
                                main_min_pixels=MAIN_MIN_PIXELS, design=pretrain_class_design)
    top, left, side = object_crop(rng, label == main)
    image = cv2.resize(image[top:top + side, left:left + side].astype(np.float32),
                       (options.size, options.size), interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label[top:top + side, left:left + side], (options.size, options.size),
                       interpolation=cv2.INTER_NEAREST)
    return normalize(image), label, main


def object_crop(rng, mask):
    """(top, left, side) of a square crop holding the object of `mask`, ImageNet-style.

    The side is `CROP_ZOOM` times the object's longer bounding-box side
    (at most the image's shorter side), placed uniformly among the positions
    that keep the whole box inside when it fits.
    """
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(max(y1 - y0, x1 - x0) * rng.uniform(*CROP_ZOOM))
    side = max(1, min(side, height, width))

    def start(low, high, length):
        first, last = max(0, high - side), min(low, length - side)
        if first > last:  # the box is longer than the crop: centre the crop on it
            return int(np.clip((low + high - side) // 2, 0, length - side))
        return int(rng.integers(first, last + 1))

    return start(y0, y1, height), start(x0, x1, width), side


def _element(options, stream, index):
    image, label, main_class = render_corpus_image(options, stream, int(index))
    if options.target == "classification":
        return image, np.int32(main_class - 1)
    return image, label.astype(np.int32)


def corpus_dataset(options: CorpusOptions, stream: int, start: int, count: int,
                   batch_size: int, *, prefetch: int = tf.data.AUTOTUNE,
                   indices=None) -> tf.data.Dataset:
    """Images start..start+count-1 of `stream`, batched: {"image", "label"}.

    Rendered in NumPy inside `tf.numpy_function`, in parallel but in order
    (`deterministic=True`), then batched (the last partial batch dropped) and
    prefetched. "label" is [B, size, size] int32 (dense) or [B] int32
    (classification). `indices`: these images of the stream instead, in this
    order (`start` and `count` are then ignored).
    """
    size = options.size
    label_shape = [] if options.target == "classification" else [size, size]

    def load(index):
        image, label = tf.numpy_function(lambda i: _element(options, stream, i), [index],
                                         [tf.float32, tf.int32], stateful=False)
        image.set_shape([size, size, 3])
        label.set_shape(label_shape)
        return {"image": image, "label": label}

    dataset = (tf.data.Dataset.range(start, start + count) if indices is None
               else tf.data.Dataset.from_tensor_slices(np.asarray(indices, np.int64)))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(prefetch) if prefetch else dataset
