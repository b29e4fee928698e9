"""BAM base-learner annotations (BAM `util/get_mulway_base_data.py`).

BAM's stage-1 base learner is a (1 + number of base classes)-way segmenter.
Its labels remap the dataset's class ids: base class c becomes its 1-based
position in the fold's base list (`FoldClasses.base`, the reference
`sub_list` order), every other class (novel classes included) becomes
background 0, and the ignore value 255 stays 255.
"""

import os

import numpy as np

from svf_tf.data.image_io import IGNORE_LABEL, read_label, write_image
from svf_tf.data.lists.class_splits import FoldClasses


def base_annotation_table(fold_classes: FoldClasses) -> np.ndarray:
    """The 256-entry lookup table of `to_base_annotation`."""
    table = np.zeros(256, dtype=np.uint8)
    table[IGNORE_LABEL] = IGNORE_LABEL
    for index, c in enumerate(fold_classes.base, 1):
        table[c] = index
    return table


def to_base_annotation(label: np.ndarray, fold_classes: FoldClasses) -> np.ndarray:
    """Remaps a label to base-learner indices.

    Args:
        label: integer label array of any shape with values 0..255.
        fold_classes: the fold's classes.

    Returns:
        uint8 array of the same shape: base class c -> base.index(c) + 1,
        255 -> 255, everything else -> 0.
    """
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(
            f"Label values must be in 0..255, got {label.min()}..{label.max()}: pass the raw "
            "index label (read_label)."
        )
    return base_annotation_table(fold_classes)[label.astype(np.intp)]


def write_base_annotations(label_paths, fold_classes: FoldClasses, output_dir: str, *,
                           overwrite: bool = False, progress: bool = True) -> dict:
    """Writes the base annotation of each label as an 8-bit PNG of the same name.

    BAM keeps them in `base_annotation/{pascal|coco}/{train|val}/{fold}/`; pass
    such a folder (outside the dataset root) as `output_dir`. Each file is
    written whole or not at all, so a run stopped midway can be resumed:
    the files it finished are kept, none is half-written.

    Args:
        label_paths: label PNGs to convert.
        fold_classes: the fold's classes.
        output_dir: folder for the output PNGs (created if needed).
        overwrite: rewrite existing files.
        progress: show a progress bar.

    Returns:
        {"written": n, "kept": n}.

    Raises:
        OSError: an output file cannot be written (naming it).
    """
    os.makedirs(output_dir, exist_ok=True)
    counts = {"written": 0, "kept": 0}
    bar = None
    if progress:
        import keras  # only for the progress bar: the lists load without TensorFlow

        bar = keras.utils.Progbar(len(label_paths), unit_name="label")
    for done, label_path in enumerate(label_paths, 1):
        target = os.path.join(output_dir, os.path.basename(label_path))
        if not overwrite and os.path.isfile(target):
            counts["kept"] += 1
        else:
            write_image(target, to_base_annotation(read_label(label_path), fold_classes))
            counts["written"] += 1
        if bar is not None and (done % 200 == 0 or done == len(label_paths)):
            bar.update(done)
    return counts
