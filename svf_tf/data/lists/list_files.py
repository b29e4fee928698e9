"""Dataset list files: reading them, and deriving them from split files.

A list file has one `image_path label_path` pair per line, relative to the
dataset root, as in the references (PFENet `lists/pascal/*.txt`), e.g.
`JPEGImages/2007_000032.jpg SegmentationClassAug/2007_000032.png`.

When no list file is given, the list is derived from the dataset's own files:

* Pascal val: the ids in VOC `ImageSets/Segmentation/val.txt` (VOC2012 val,
  1,449 images).
* Pascal train: the SBD `train_noval` ids followed by VOC
  `ImageSets/Segmentation/train.txt`, without duplicates (first occurrence
  kept). This is how the reference `voc_sbd_merge_noduplicate.txt` (5,953
  lines) was made from SBD train_noval (5,623) and VOC train (1,464). The SBD
  ids are read from `ImageSets/Segmentation/sbd_train_noval.txt`, which
  `scripts/prepare_pascal.py` writes while it converts SBD; without that file
  the training list is VOC train only and a warning says so.
* COCO: every mask `annotations/{train,val}2014/*.png`, sorted, paired with
  `{train,val}2014/<same name>.jpg`. `scripts/prepare_coco.py` writes masks
  only for images that have annotations (82,081 train / 40,137 val).
"""

import hashlib
import os

from absl import logging

from svf_tf.atomic_files import write_file_atomically

VOC_SPLIT_DIR = os.path.join("ImageSets", "Segmentation")
SBD_TRAIN_IDS = "sbd_train_noval.txt"
SYNTHETIC_MANIFEST = "svf_tf_synthetic.json"
SPLITS = ("train", "val")


def check_split(split: str) -> str:
    """Returns `split` if it is "train" or "val", else raises ValueError."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}: use 'train' or 'val'.")
    return split


def check_data_root(data_root: str, dataset: str) -> str:
    """Returns the absolute dataset root, or raises if it is not a directory."""
    if data_root is None or not os.path.isdir(data_root):
        script = "scripts/prepare_coco.py" if dataset == "coco" else "scripts/prepare_pascal.py"
        raise FileNotFoundError(
            f"Dataset root {data_root!r} is not a directory: pass the {dataset} root (for Pascal "
            f"the VOC2012 folder, for COCO the folder holding train2014/ and val2014/), "
            f"prepared with {script}."
        )
    return os.path.abspath(data_root)


def read_list_file(path: str) -> list[tuple[str, str]]:
    """Reads `image label` pairs from a list file.

    Args:
        path: the list file.

    Returns:
        The (image, label) pairs in file order, as written (relative or absolute).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a non-empty line does not have exactly two fields.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"List file {path!r} does not exist: pass an existing list file, or leave it unset to "
            "derive the list from the dataset's split files."
        )
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{number}: expected 'image_path label_path', got {line.strip()!r}: "
                    "fix or remove the line."
                )
            pairs.append((fields[0], fields[1]))
    if not pairs:
        raise ValueError(f"List file {path!r} has no 'image_path label_path' lines: check it.")
    return pairs


def write_list_file(path: str, pairs) -> None:
    """Writes (image, label) pairs as a list file, whole or not at all.

    Raises:
        OSError: the file cannot be written (naming it); the previous file,
            if any, is left as it was.
    """
    write_file_atomically(path, "".join(f"{image} {label}\n" for image, label in pairs))


def resolve(data_root: str, path: str) -> str:
    """A list entry as an absolute path (entries may be relative or absolute)."""
    return os.path.normpath(os.path.join(data_root, path))


def read_ids(path: str) -> list[str]:
    """Reads a VOC/SBD split file: one image id per line (first field)."""
    with open(path, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def pascal_pair(image_id: str) -> tuple[str, str]:
    """The reference list pair of a VOC image id."""
    return (f"JPEGImages/{image_id}.jpg", f"SegmentationClassAug/{image_id}.png")


def _pascal_pairs(data_root: str, split: str) -> list[tuple[str, str]]:
    split_file = os.path.join(data_root, VOC_SPLIT_DIR, f"{split}.txt")
    if not os.path.isfile(split_file):
        raise FileNotFoundError(
            f"VOC split file {split_file!r} does not exist: is the dataset root the VOC2012 "
            "folder? Otherwise pass the list explicitly (train_list / val_list)."
        )
    ids = read_ids(split_file)
    if split == "train":
        sbd_file = os.path.join(data_root, VOC_SPLIT_DIR, SBD_TRAIN_IDS)
        if os.path.isfile(sbd_file):
            # SBD first, then VOC: the order of the reference merge.
            ids = read_ids(sbd_file) + ids
        elif not os.path.isfile(os.path.join(data_root, SYNTHETIC_MANIFEST)):
            logging.warning(
                "%s not found: the Pascal training list is VOC train only (%d images, not the "
                "5,953 of VOC+SBD). Run scripts/prepare_pascal.py --sbd_root=... or pass "
                "train_list.", sbd_file, len(ids))
    return [pascal_pair(i) for i in dict.fromkeys(ids)]


def _coco_pairs(data_root: str, split: str) -> list[tuple[str, str]]:
    mask_dir = os.path.join(data_root, "annotations", f"{split}2014")
    if not os.path.isdir(mask_dir):
        raise FileNotFoundError(
            f"COCO mask directory {mask_dir!r} does not exist: write the masks with "
            "scripts/prepare_coco.py, or pass the list explicitly (train_list / val_list)."
        )
    names = sorted(n[:-4] for n in os.listdir(mask_dir) if n.endswith(".png"))
    return [(f"{split}2014/{n}.jpg", f"annotations/{split}2014/{n}.png") for n in names]


def derived_pairs(dataset: str, data_root: str, split: str) -> list[tuple[str, str]]:
    """The list of a split derived from the dataset's own files (module docstring).

    Args:
        dataset: "pascal" or "coco".
        data_root: dataset root.
        split: "train" or "val".

    Returns:
        (image, label) pairs relative to `data_root`, in list order.
    """
    check_split(split)
    pairs = (_coco_pairs if dataset == "coco" else _pascal_pairs)(data_root, split)
    if not pairs:
        raise ValueError(
            f"The derived {dataset} {split} list under {data_root!r} is empty: check the dataset "
            "root, or pass the list explicitly."
        )
    return pairs


def pairs_digest(pairs) -> str:
    """A content hash of a list (identifies it in cache keys)."""
    digest = hashlib.sha256()
    for image, label in pairs:
        digest.update(f"{image} {label}\n".encode())
    return digest.hexdigest()
