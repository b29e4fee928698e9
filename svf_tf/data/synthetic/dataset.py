"""The built-in synthetic dataset, in the exact on-disk layout of Pascal VOC.

Users and CI have neither Pascal nor COCO, so the project generates a small
stand-in with no download, deterministically from a seed, in a few seconds:

    <root>/JPEGImages/<id>.jpg                 RGB images, sides min_side..max_side
    <root>/SegmentationClassAug/<id>.png       index PNGs: 0 background, 1..20, 255 rings
    <root>/ImageSets/Segmentation/{train,val}.txt   image ids (VOC split files)
    <root>/lists/{train,val}.txt               `JPEGImages/x.jpg SegmentationClassAug/x.png`
    <root>/svf_tf_synthetic.json               manifest: generator version and options

Every image has one large "main" object (at least 2048 labelled pixels, so
it qualifies for its class's support pool) and `min_extra_objects` to
`max_extra_objects` further objects of random classes and sizes, so most
queries hold objects the support does not name. Main classes cycle through all
20 classes in shuffled rounds, so with the default 240 validation images
every class has a validation support pool of at least 12 images in every
fold. See `synthetic_scene` for what the classes look like.

The dataset is generated on first use and regenerated when the generator
version or any option changes (the manifest is compared). The manifest is
the completion marker: it is written last, and generation happens in a
temporary sibling directory that takes the root's place only once complete
(`svf_tf.atomic_files.staged_directory`). A full disk, a failed write, a
kill or Ctrl-C therefore leave the previous dataset or none, never a half
one that a later run would take as complete.
"""

import dataclasses
import hashlib
import json
import os
import shutil

import cv2
import numpy as np

from svf_tf.atomic_files import staged_directory, write_file_atomically
from svf_tf.data.cache import svf_tf_cache_dir
from svf_tf.data.image_io import write_image
from svf_tf.data.lists.list_files import (
    SYNTHETIC_MANIFEST,
    VOC_SPLIT_DIR,
    pascal_pair,
    write_list_file,
)
from svf_tf.data.synthetic.scene import NUM_SYNTHETIC_CLASSES, render_scene

GENERATOR_VERSION = 2  # 2: texture periods relative to object size; 1..3 extra objects
_MIN_POOL_PIXELS = 2048 + 200  # Margin over the 2048-pixel pool threshold.


@dataclasses.dataclass(frozen=True)
class SyntheticOptions:
    """Size options of the synthetic dataset.

    Attributes:
        num_train: training images (split "train").
        num_val: validation images (split "val"); each class is the main
            object of at least num_val // 20 of them.
        min_side: smallest image side in pixels.
        max_side: largest image side in pixels.
        min_extra_objects: at least this many objects besides the main one.
        max_extra_objects: at most this many objects besides the main one.
        ring_width: width of the 255 boundary ring on each side of an edge.
        jpeg_quality: JPEG quality of the images.
        seed: random seed; the dataset is a deterministic function of the options.
    """

    num_train: int = 800
    num_val: int = 240
    min_side: int = 160
    max_side: int = 320
    min_extra_objects: int = 1
    max_extra_objects: int = 3
    ring_width: int = 1
    jpeg_quality: int = 90
    seed: int = 0

    def __post_init__(self):
        for name in ("num_train", "num_val", "min_side", "max_side", "ring_width",
                     "jpeg_quality"):
            if getattr(self, name) < 1:
                raise ValueError(f"Synthetic option {name}={getattr(self, name)!r} must be >= 1.")
        if not 0 <= self.min_extra_objects <= self.max_extra_objects:
            raise ValueError(
                f"Synthetic options min_extra_objects={self.min_extra_objects!r}, "
                f"max_extra_objects={self.max_extra_objects!r}: need 0 <= min <= max.")
        if not 128 <= self.min_side <= self.max_side:
            raise ValueError(
                f"Synthetic sides min_side={self.min_side}, max_side={self.max_side}: need "
                "128 <= min_side <= max_side, so that a 2048-pixel object fits."
            )


def default_synthetic_root(options: SyntheticOptions) -> str:
    """`<cache>/synthetic_pascal` for the default options, else a name with the options' hash."""
    name = "synthetic_pascal"
    if options != SyntheticOptions():
        values = json.dumps(dataclasses.asdict(options), sort_keys=True).encode()
        name += "-" + hashlib.sha256(values).hexdigest()[:10]
    return os.path.join(svf_tf_cache_dir(), name)


def _manifest(options: SyntheticOptions) -> dict:
    return {"generator": "svf_tf synthetic_pascal", "version": GENERATOR_VERSION,
            "options": dataclasses.asdict(options)}


def _read_manifest(root: str):
    try:
        with open(os.path.join(root, SYNTHETIC_MANIFEST), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _main_classes(rng, count):
    """Main object classes: shuffled rounds over all classes."""
    rounds = -(-count // NUM_SYNTHETIC_CLASSES)
    classes = np.concatenate([rng.permutation(NUM_SYNTHETIC_CLASSES) + 1 for _ in range(rounds)])
    return classes[:count]


def _write_split(out: str, split: str, count: int, options: SyntheticOptions) -> list[str]:
    split_index = ("train", "val").index(split)
    main = _main_classes(np.random.default_rng([options.seed, split_index, 0]), count)
    ids = []
    for index in range(count):
        rng = np.random.default_rng([options.seed, split_index, 1, index])
        height, width = (int(s) for s in rng.integers(options.min_side, options.max_side + 1, 2))
        extras = rng.integers(1, NUM_SYNTHETIC_CLASSES + 1,
                              int(rng.integers(options.min_extra_objects,
                                               options.max_extra_objects + 1)))
        image, label = render_scene(rng, height, width, int(main[index]),
                                    extra_classes=[int(c) for c in extras],
                                    main_min_pixels=_MIN_POOL_PIXELS,
                                    ring_width=options.ring_width)
        image_id = f"{split}_{index:06d}"
        image_path, label_path = pascal_pair(image_id)
        # Inside the staged dataset directory, published whole: no flush per file.
        write_image(os.path.join(out, image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality], durable=False)
        write_image(os.path.join(out, label_path), label, durable=False)
        ids.append(image_id)
    write_file_atomically(os.path.join(out, VOC_SPLIT_DIR, f"{split}.txt"),
                          "".join(f"{i}\n" for i in ids))
    write_list_file(os.path.join(out, "lists", f"{split}.txt"), [pascal_pair(i) for i in ids])
    return ids


def generate_synthetic_dataset(out: str, options: SyntheticOptions) -> None:
    """Writes the dataset into the (new or empty) directory `out`.

    The manifest, which marks the dataset complete, is written last, so a
    directory whose generation stopped midway has none.

    Raises:
        OSError: a file cannot be written (naming it).
    """
    for sub in ("JPEGImages", "SegmentationClassAug", VOC_SPLIT_DIR, "lists"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    _write_split(out, "train", options.num_train, options)
    _write_split(out, "val", options.num_val, options)
    write_file_atomically(os.path.join(out, SYNTHETIC_MANIFEST),
                          json.dumps(_manifest(options), indent=2, sort_keys=True))


class _GeneratedMeanwhileError(Exception):
    """Another process published the same dataset while this one was generating it."""


def ensure_synthetic_dataset(root: str | None = None, **size_options) -> str:
    """Returns the root of the synthetic dataset, generating it if needed.

    Args:
        root: where the dataset lives; None means `<svf_tf cache>/synthetic_pascal`
            (`$SVF_TF_CACHE` or `~/.cache/svf_tf`), with a suffix for
            non-default options. An existing directory is reused if its
            manifest matches, regenerated if it is an older synthetic dataset,
            and refused if it is anything else.
        **size_options: fields of `SyntheticOptions` (num_train, num_val,
            min_side, max_side, min_extra_objects, max_extra_objects, ring_width,
            jpeg_quality, seed).

    Returns:
        The absolute dataset root, in Pascal layout (use it as `data_root`
        with dataset "pascal").

    Raises:
        ValueError: `root` holds something else, or an option is unknown or bad.
        OSError: a file cannot be written (naming it); `root` is left as it was.
    """
    known = {f.name for f in dataclasses.fields(SyntheticOptions)}
    unknown = sorted(set(size_options) - known)
    if unknown:
        raise ValueError(f"Unknown synthetic dataset option(s) {unknown}: use {sorted(known)}.")
    options = SyntheticOptions(**size_options)
    root = os.path.abspath(root or default_synthetic_root(options))
    if _read_manifest(root) == _manifest(options):
        return root
    if os.path.isdir(root) and os.listdir(root):
        old = _read_manifest(root)
        if not old or old.get("generator") != "svf_tf synthetic_pascal":
            raise ValueError(
                f"{root!r} exists and is not a synthetic dataset made by svf_tf (no "
                f"{SYNTHETIC_MANIFEST}): pass an empty or new directory."
            )
    # Generated beside `root`, which it replaces only once complete (an outdated
    # synthetic dataset, checked above, is replaced; on failure it stays).
    staging = None
    try:
        with staged_directory(root) as staging:
            generate_synthetic_dataset(staging, options)
            if _read_manifest(root) == _manifest(options):
                raise _GeneratedMeanwhileError  # keep theirs, which readers may already use
    except _GeneratedMeanwhileError:
        pass
    except OSError:
        # A full disk, or a lost race with another process (the rename onto its
        # dataset failed, which leaves the staging behind): keep theirs if it matches.
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if _read_manifest(root) != _manifest(options):
            raise
    return root
