"""TFDS builder `pascal5i`: Pascal VOC2012 + SBD in the Pascal-5i layout."""

from svf_tf.data.tfds.segmentation_builder import SegmentationListBuilder


class Pascal5i(SegmentationListBuilder):
    """Pascal-5i images and SegmentationClassAug labels (splits train, val).

    The train split is VOC train merged with SBD train_noval (5,953 images
    with the full data), val is VOC2012 val (1,449); the folds are not baked
    in, `svf_tf.data.build_fold_lists` selects from these lists.

    Example:
        builder = Pascal5i(data_dir="/data/tfds")
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir="/data/VOCdevkit/VOC2012"))
        val = builder.as_dataset(split="val")
    """

    DATASET = "pascal"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    manual_dir is the VOC2012 folder with JPEGImages/, SegmentationClassAug/
    (index PNGs, 0..20 and 255) and ImageSets/Segmentation/{train,val}.txt,
    plus ImageSets/Segmentation/sbd_train_noval.txt for the SBD part of the
    training list. scripts/prepare_pascal.py makes these from the VOC2012
    and SBD archives; svf_tf.data.ensure_synthetic_dataset() makes a small
    synthetic stand-in in the same layout.
    """
