"""Builds `SegmentationClassAug` (Pascal-5i labels) from VOC2012 and SBD originals.

The library half of `scripts/prepare_pascal.py`.

For users who have the original archives rather than a ready-made
SegmentationClassAug folder:

* VOC2012 (`VOCtrainval_11-May-2012.tar`): `voc_root` is its `VOC2012`
  folder, with `JPEGImages/`, `SegmentationClass/` (palette PNGs) and
  `ImageSets/Segmentation/{train,val}.txt`.
* SBD (`benchmark.tgz`, optional): `sbd_root` is its `dataset` folder, with
  `cls/<id>.mat` (MATLAB files holding `GTcls.Segmentation`) and
  `train.txt`/`val.txt`; `train_noval.txt` from the SBD page is used if it is
  there.

Writes into the VOC2012 folder (the standard layout, which svf_tf.data reads):

* `SegmentationClassAug/<id>.png`: 8-bit grayscale index PNGs, 0..20 and 255.
  VOC labels are read as raw palette indices (never colour-converted) and
  win where VOC and SBD both label an image, since they carry the 255 void
  boundaries; SBD labels (0..20, no 255) fill in the rest.
* `ImageSets/Segmentation/sbd_train_noval.txt`: the SBD image ids of the
  training list. `svf_tf.data` merges them with VOC train into the training
  list (PFENet `lists/pascal/voc_sbd_merge_noduplicate.txt`, built by
  `duplicate_removel.py`). They are SBD's `train_noval.txt` if present,
  else SBD `train.txt` minus every VOC2012 val image (`ImageSets/Main/val.txt`
  and `ImageSets/Segmentation/val.txt`). That is our reading of "SBD train
  without VOC2012 val": the segmentation val set alone (1,449) cannot account
  for the 8,498 - 5,623 = 2,875 removed images, the Main val set (5,823) can.
  The count is printed so it can be compared with the official 5,623.

Existing output PNGs are kept unless `overwrite`; every file is written
whole or not at all, so a run stopped midway can simply be run again. Needs
scipy for SBD.
"""

import os

import numpy as np

from svf_tf.atomic_files import write_file_atomically
from svf_tf.data.image_io import check_label_values, read_label, write_image
from svf_tf.data.lists.list_files import SBD_TRAIN_IDS, VOC_SPLIT_DIR, read_ids

NUM_PASCAL_CLASSES = 20


def read_sbd_label(path: str) -> np.ndarray:
    """Reads the class segmentation of an SBD `cls/<id>.mat` file as uint8 indices."""
    try:
        import scipy.io
    except ImportError as error:
        raise ValueError("Reading SBD .mat files needs scipy: pip install scipy==1.17.1") from error
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"SBD label {path!r} does not exist: --sbd_root must be SBD's `dataset` folder "
            "(holding cls/)."
        )
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
        segmentation = np.asarray(mat["GTcls"].Segmentation)
    except (ValueError, KeyError, AttributeError, OSError) as error:
        raise ValueError(
            f"SBD label {path!r} is not a readable SBD class file with GTcls.Segmentation "
            f"({error}): re-extract benchmark.tgz."
        ) from error
    if segmentation.ndim != 2:
        raise ValueError(f"SBD label {path!r} has shape {segmentation.shape}, expected (H, W).")
    label = segmentation.astype(np.uint8)
    if not np.array_equal(label, segmentation):
        raise ValueError(f"SBD label {path!r} has values outside 0..255: re-extract it.")
    check_label_values(label, NUM_PASCAL_CLASSES, path)
    return label


def sbd_train_ids(sbd_root: str, voc_root: str) -> tuple[list[str], str]:
    """The SBD ids of the training list, and a sentence saying where they came from."""
    noval = os.path.join(sbd_root, "train_noval.txt")
    if os.path.isfile(noval):
        return read_ids(noval), f"SBD {noval}"
    train = os.path.join(sbd_root, "train.txt")
    if not os.path.isfile(train):
        raise FileNotFoundError(
            f"SBD split file {train!r} does not exist: --sbd_root must be SBD's `dataset` folder."
        )
    excluded = set(read_ids(os.path.join(voc_root, VOC_SPLIT_DIR, "val.txt")))
    main_val = os.path.join(voc_root, "ImageSets", "Main", "val.txt")
    source = f"SBD train.txt minus VOC2012 {VOC_SPLIT_DIR}/val.txt"
    if os.path.isfile(main_val):
        excluded |= set(read_ids(main_val))
        source += " and ImageSets/Main/val.txt"
    return [i for i in read_ids(train) if i not in excluded], source


def prepare_pascal_labels(voc_root: str, sbd_root: str | None = None, *, overwrite: bool = False,
                          progress: bool = True) -> dict:
    """Writes SegmentationClassAug and the SBD id list into `voc_root`.

    Args:
        voc_root: the VOC2012 folder.
        sbd_root: SBD's `dataset` folder, or None for VOC labels only.
        overwrite: rewrite existing label PNGs.
        progress: show a progress bar.

    Returns:
        Counts: voc_written, sbd_written, kept, and with SBD sbd_train_ids,
        sbd_train_source and id_file.
    """
    for sub in ("JPEGImages", "SegmentationClass", VOC_SPLIT_DIR):
        if not os.path.isdir(os.path.join(voc_root, sub)):
            raise FileNotFoundError(
                f"{os.path.join(voc_root, sub)!r} does not exist: --voc_root must be the VOC2012 "
                "folder of VOCtrainval_11-May-2012.tar."
            )
    voc_ids = list(dict.fromkeys(
        read_ids(os.path.join(voc_root, VOC_SPLIT_DIR, "train.txt"))
        + read_ids(os.path.join(voc_root, VOC_SPLIT_DIR, "val.txt"))))
    out_dir = os.path.join(voc_root, "SegmentationClassAug")
    os.makedirs(out_dir, exist_ok=True)
    counts = {"voc_written": 0, "sbd_written": 0, "kept": 0}
    sbd_ids = []
    if sbd_root:
        voc_set = set(voc_ids)
        for name in ("train.txt", "val.txt"):
            if not os.path.isfile(os.path.join(sbd_root, name)):
                raise FileNotFoundError(
                    f"SBD split file {os.path.join(sbd_root, name)!r} does not exist: --sbd_root "
                    "must be SBD's `dataset` folder (benchmark_RELEASE/dataset)."
                )
        sbd_ids = [i for i in dict.fromkeys(
            read_ids(os.path.join(sbd_root, "train.txt"))
            + read_ids(os.path.join(sbd_root, "val.txt"))) if i not in voc_set]
    jobs = [(i, "voc_written") for i in voc_ids] + [(i, "sbd_written") for i in sbd_ids]
    bar = None
    if progress:
        import keras  # only for the progress bar: preparation runs without TensorFlow otherwise

        bar = keras.utils.Progbar(len(jobs), unit_name="label")
    for done, (image_id, kind) in enumerate(jobs, 1):
        target = os.path.join(out_dir, f"{image_id}.png")
        if not overwrite and os.path.isfile(target):
            counts["kept"] += 1
        elif kind == "voc_written":
            write_image(target, read_label(
                os.path.join(voc_root, "SegmentationClass", f"{image_id}.png"),
                num_classes=NUM_PASCAL_CLASSES))
            counts[kind] += 1
        else:
            write_image(target, read_sbd_label(os.path.join(sbd_root, "cls", f"{image_id}.mat")))
            counts[kind] += 1
        if bar is not None and (done % 200 == 0 or done == len(jobs)):
            bar.update(done)
    if sbd_root:
        train_ids, source = sbd_train_ids(sbd_root, voc_root)
        missing = [i for i in train_ids
                   if not os.path.isfile(os.path.join(voc_root, "JPEGImages", f"{i}.jpg"))]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} SBD training images are not in {voc_root}/JPEGImages (e.g. "
                f"{missing[0]}.jpg): use the VOC2012 trainval archive, which contains them."
            )
        id_file = os.path.join(voc_root, VOC_SPLIT_DIR, SBD_TRAIN_IDS)
        write_file_atomically(id_file, "".join(f"{i}\n" for i in train_ids))
        counts.update(sbd_train_ids=len(train_ids), sbd_train_source=source, id_file=id_file)
    return counts
