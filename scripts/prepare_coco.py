"""Writes COCO-20i index-PNG masks (classes 1..80) from the official COCO 2014 files.

--coco_root holds `train2014/`, `val2014/` and
`annotations/instances_{train,val}2014.json`; masks go to
`annotations/{train,val}2014/<image name>.png`. Class index k is the k-th
official category id in ascending order (1 person ... 80 toothbrush); every
convention (crowd regions, overlaps) is in svf_tf/data/preparation/coco.py.
Needs pycocotools (pip install pycocotools==2.0.11).

    python scripts/prepare_coco.py --coco_root=/data/MSCOCO2014
"""

import os

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.data.preparation.coco import CROWD_MODES, prepare_coco_masks  # noqa: E402

flags.DEFINE_string("coco_root", None, "COCO 2014 root (train2014/, val2014/, annotations/).")
flags.DEFINE_list("splits", ["train", "val"], "Splits to convert.")
flags.DEFINE_enum("crowd", "class", list(CROWD_MODES), "Crowd regions: painted with their "
                  "class, with 255 (ignore), or skipped (background).")
flags.DEFINE_bool("overwrite", False, "Rewrite existing masks.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected arguments {argv[1:]}: every option is a --flag.")
    if not FLAGS.coco_root:
        raise ValueError("Pass --coco_root=DIR (holding train2014/, val2014/, annotations/).")
    # Where the masks go, checked before anything is written (a missing root is reported below).
    if os.path.isdir(FLAGS.coco_root):
        paths.ensure_writable_dir(os.path.join(FLAGS.coco_root, "annotations"), create=False,
                                  fix="the masks are written into --coco_root's annotations/: "
                                  "give a --coco_root you may write to")
    for split in FLAGS.splits:
        counts = prepare_coco_masks(FLAGS.coco_root, split, crowd=FLAGS.crowd,
                                    overwrite=FLAGS.overwrite)
        print(f"{split}: {counts['written']} masks written, {counts['kept']} kept, "
              f"{counts['without_annotations']} images without annotations skipped -> "
              f"{counts['output_dir']}")


if __name__ == "__main__":
    cli.run(main)
