"""Builds Pascal-5i labels (`SegmentationClassAug`) from the VOC2012 and SBD originals.

--voc_root is the VOC2012 folder of VOCtrainval_11-May-2012.tar; --sbd_root
(optional) is the `dataset` folder of SBD's benchmark.tgz. Writes
`SegmentationClassAug/<id>.png` (8-bit index PNGs; VOC palette PNGs read as
raw indices) and `ImageSets/Segmentation/sbd_train_noval.txt` (the SBD ids of
the training list) into --voc_root. Details: svf_tf/data/preparation/pascal.py.

    python scripts/prepare_pascal.py --voc_root=VOCdevkit/VOC2012 \
        --sbd_root=benchmark_RELEASE/dataset
"""

import os

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.data.preparation.pascal import prepare_pascal_labels  # noqa: E402

flags.DEFINE_string("voc_root", None, "The VOC2012 folder (JPEGImages/, SegmentationClass/, "
                    "ImageSets/).")
flags.DEFINE_string("sbd_root", None, "SBD's `dataset` folder (cls/, train.txt, val.txt); "
                    "optional.")
flags.DEFINE_bool("overwrite", False, "Rewrite existing label PNGs.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected arguments {argv[1:]}: every option is a --flag.")
    if not FLAGS.voc_root:
        raise ValueError("Pass --voc_root=.../VOCdevkit/VOC2012.")
    # What is written, checked before anything is (a missing root is reported below).
    for folder in ("SegmentationClassAug", os.path.join("ImageSets", "Segmentation")):
        if os.path.isdir(FLAGS.voc_root):
            paths.ensure_writable_dir(os.path.join(FLAGS.voc_root, folder), create=False,
                                      fix="the labels and the SBD id list are written into "
                                      "--voc_root: give a --voc_root you may write to")
    counts = prepare_pascal_labels(FLAGS.voc_root, FLAGS.sbd_root, overwrite=FLAGS.overwrite)
    print(f"SegmentationClassAug: {counts['voc_written']} labels from VOC, "
          f"{counts['sbd_written']} from SBD, {counts['kept']} existing kept.")
    if "id_file" in counts:
        print(f"{counts['id_file']}: {counts['sbd_train_ids']} SBD training ids "
              f"({counts['sbd_train_source']}; the reference train_noval has 5,623).")
    else:
        print("No --sbd_root: the training list will be VOC train only (1,464 images).")


if __name__ == "__main__":
    cli.run(main)
