"""Writes COCO-20i index-PNG masks from the official COCO 2014 instance files.

The library half of `scripts/prepare_coco.py`. The references read COCO as
one 8-bit PNG per image with class indices 1..80 (BAM `util/dataset.py`);
those PNGs came from an external PFENet script that is not public, so the
conventions below are stated explicitly:

* Class index k is the k-th of the 80 official category ids in ascending
  order (`COCO_CATEGORY_IDS`): 1 person, 2 bicycle, 3 car, ..., 80
  toothbrush. A category file with other ids is refused.
* Every image with at least one annotation gets a mask (82,081 train and
  40,137 val images, the counts of the reference lists); images without
  annotations get none and so stay out of the derived lists.
* Instances are painted largest first, so a small object lying on a larger
  one stays visible.
* Crowd regions (`iscrowd=1`): `crowd="class"` (default) paints them with
  their class, "ignore" paints 255, "skip" leaves them background.

Layout (relative to the COCO root):
`{train,val}2014/COCO_{split}2014_<id>.jpg` (the images, unchanged),
`annotations/instances_{split}2014.json` (input) and
`annotations/{split}2014/COCO_{split}2014_<id>.png` (output).
"""

import os

import numpy as np

from svf_tf.data.image_io import IGNORE_LABEL, write_image

# Official COCO category ids (sparse, 1..90) in ascending order; mask index = position + 1.
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27,
    28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
    54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80,
    81, 82, 84, 85, 86, 87, 88, 89, 90,
)
COCO_CLASS_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
CROWD_MODES = ("class", "ignore", "skip")


def category_index(categories) -> dict[int, int]:
    """Maps official COCO category ids to mask indices 1..80.

    Args:
        categories: the `categories` list of an instances JSON file.

    Returns:
        {official id: index}, index = rank of the id in ascending order + 1.

    Raises:
        ValueError: the ids are not the 80 official COCO category ids.
    """
    ids = sorted(int(c["id"]) for c in categories)
    if tuple(ids) != COCO_CATEGORY_IDS:
        raise ValueError(
            f"The annotation file has category ids {ids[:5]}...{ids[-3:]} ({len(ids)} ids), not "
            "the 80 official COCO ids: use the official instances_{train,val}2014.json."
        )
    return {cat_id: index for index, cat_id in enumerate(ids, 1)}


def _load_coco(path):
    try:
        from pycocotools.coco import COCO
    except ImportError as error:
        raise ValueError(
            "Writing COCO masks needs pycocotools: pip install pycocotools==2.0.11"
        ) from error
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"COCO annotation file {path!r} does not exist: put the official "
            "instances_{train,val}2014.json (from annotations_trainval2014.zip) into "
            "<coco_root>/annotations."
        )
    return COCO(path)


def instance_label(coco, image_info, index: dict[int, int], crowd: str) -> np.ndarray:
    """The index mask of one image (module docstring for the conventions)."""
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_info["id"], iscrowd=None))
    label = np.zeros((image_info["height"], image_info["width"]), np.uint8)
    for ann in sorted(annotations, key=lambda a: -float(a["area"])):
        if ann.get("iscrowd", 0) and crowd == "skip":
            continue
        value = IGNORE_LABEL if ann.get("iscrowd", 0) and crowd == "ignore" else \
            index[int(ann["category_id"])]
        label[coco.annToMask(ann) > 0] = value
    return label


def prepare_coco_masks(coco_root: str, split: str, *, crowd: str = "class",
                       overwrite: bool = False, progress: bool = True) -> dict:
    """Writes the masks of one split.

    Each mask is written whole or not at all, so a run stopped midway can be
    run again: the masks it finished are kept, none is half-written.

    Args:
        coco_root: folder with `{split}2014/` and `annotations/instances_{split}2014.json`.
        split: "train" or "val".
        crowd: "class", "ignore" or "skip" (module docstring).
        overwrite: rewrite existing masks.
        progress: show a progress bar.

    Returns:
        {"written": n, "kept": n, "without_annotations": n, "output_dir": path}.
    """
    if split not in ("train", "val"):
        raise ValueError(f"Unknown COCO split {split!r}: use 'train' or 'val'.")
    if crowd not in CROWD_MODES:
        raise ValueError(f"Unknown crowd mode {crowd!r}: use one of {list(CROWD_MODES)}.")
    image_dir = os.path.join(coco_root, f"{split}2014")
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"COCO image folder {image_dir!r} does not exist: --coco_root must hold "
            f"{split}2014/ (from {split}2014.zip)."
        )
    coco = _load_coco(os.path.join(coco_root, "annotations", f"instances_{split}2014.json"))
    index = category_index(coco.loadCats(coco.getCatIds()))
    out_dir = os.path.join(coco_root, "annotations", f"{split}2014")
    os.makedirs(out_dir, exist_ok=True)
    image_ids = sorted(coco.getImgIds())
    counts = {"written": 0, "kept": 0, "without_annotations": 0, "output_dir": out_dir}
    bar = None
    if progress:
        import keras  # only for the progress bar: preparation runs without TensorFlow otherwise

        bar = keras.utils.Progbar(len(image_ids), unit_name="image")
    for done, image_id in enumerate(image_ids, 1):
        info = coco.loadImgs(image_id)[0]
        if not coco.getAnnIds(imgIds=image_id, iscrowd=None):
            counts["without_annotations"] += 1
        else:
            if not os.path.isfile(os.path.join(image_dir, info["file_name"])):
                raise FileNotFoundError(
                    f"COCO image {os.path.join(image_dir, info['file_name'])!r} does not exist: "
                    f"re-extract {split}2014.zip into {coco_root!r}."
                )
            target = os.path.join(out_dir, os.path.splitext(info["file_name"])[0] + ".png")
            if not overwrite and os.path.isfile(target):
                counts["kept"] += 1
            else:
                write_image(target, instance_label(coco, info, index, crowd))
                counts["written"] += 1
        if bar is not None and (done % 500 == 0 or done == len(image_ids)):
            bar.update(done)
    return counts
