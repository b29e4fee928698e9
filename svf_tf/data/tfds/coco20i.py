"""TFDS builder `coco20i`: COCO 2014 with per-image index masks (COCO-20i)."""

from svf_tf.data.tfds.segmentation_builder import SegmentationListBuilder


class Coco20i(SegmentationListBuilder):
    """COCO-20i images and index masks, classes 1..80 (splits train, val).

    Every image that has a mask in annotations/{train,val}2014/ is an example
    (82,081 train and 40,137 val with the full data); folds are selected by
    `svf_tf.data.build_fold_lists`.

    Example:
        builder = Coco20i(data_dir="/data/tfds")
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir="/data/MSCOCO2014"))
    """

    DATASET = "coco"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    manual_dir is the COCO 2014 folder with train2014/, val2014/ and the
    index masks annotations/{train,val}2014/COCO_{split}2014_<id>.png
    (classes 1..80 in official category order), which
    scripts/prepare_coco.py writes from annotations/instances_*.json.
    """
