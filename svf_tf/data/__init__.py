"""Datasets for few-shot segmentation: Pascal-5i, COCO-20i and a synthetic stand-in.

The public API: fold class splits (`fold_classes`), image/label reading
(`read_image`, `read_label`), per-fold lists and support pools
(`build_fold_lists`), BAM base annotations (`to_base_annotation`) and the
built-in synthetic dataset in Pascal layout (`ensure_synthetic_dataset`).
"""

from svf_tf.data.image_io import IGNORE_LABEL, read_image, read_label
from svf_tf.data.lists.base_annotation import to_base_annotation
from svf_tf.data.lists.class_splits import NUM_CLASSES, FoldClasses, fold_classes
from svf_tf.data.lists.fold_lists import MIN_CLASS_PIXELS, FoldLists, build_fold_lists
from svf_tf.data.synthetic.dataset import ensure_synthetic_dataset

__all__ = ["IGNORE_LABEL", "MIN_CLASS_PIXELS", "NUM_CLASSES", "FoldClasses", "FoldLists",
           "build_fold_lists", "ensure_synthetic_dataset", "fold_classes", "read_image",
           "read_label", "to_base_annotation"]
