"""Small dataset trees in Pascal and COCO layout, for running the configs' commands.

The Pascal tree is the synthetic dataset (svf_tf/data/synthetic/ writes the
VOC2012 layout: JPEGImages/, SegmentationClassAug/, ImageSets/Segmentation/),
made small. The COCO tree is the same images and labels in COCO-20i's layout
(train2014/, val2014/, annotations/{train,val}2014/ PNG masks of class
indices 1..80), class c of the synthetic labels kept as COCO index c.
"""

import os
import shutil

import cv2

from svf_tf.data import ensure_synthetic_dataset

# 160 validation images give every class at least 8 as main object (5-shot
# episodes need 6 images of a novel class); 60 training images fill a batch of 32.
TREE_OPTIONS = dict(num_train=400, num_val=160, min_side=128, max_side=160, seed=5)


def pascal_tree(root):
    """A small Pascal-layout dataset at `root` (generated once); returns its path."""
    return ensure_synthetic_dataset(os.path.join(root, "VOC2012"), **TREE_OPTIONS)


def coco_tree(root, pascal_root):
    """The images and labels of `pascal_root` in COCO layout at `root`; returns its path."""
    root = os.path.join(root, "MSCOCO2014")
    if os.path.isdir(root):
        return root
    for split in ("train", "val"):
        with open(os.path.join(pascal_root, "ImageSets", "Segmentation", f"{split}.txt")) as f:
            ids = [line.split()[0] for line in f if line.strip()]
        os.makedirs(os.path.join(root, f"{split}2014"))
        os.makedirs(os.path.join(root, "annotations", f"{split}2014"))
        for index, image_id in enumerate(ids):
            name = f"COCO_{split}2014_{index:012d}"
            shutil.copy(os.path.join(pascal_root, "JPEGImages", f"{image_id}.jpg"),
                        os.path.join(root, f"{split}2014", f"{name}.jpg"))
            label = cv2.imread(os.path.join(pascal_root, "SegmentationClassAug",
                                            f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(os.path.join(root, "annotations", f"{split}2014", f"{name}.png"), label)
    return root
