"""Writes BAM's base annotations for one fold into a separate folder.

Every label of the fold's list (`build_fold_lists`: † filtered for train,
as BAM's `get_mulway_base_data.py` reads it) is remapped with
`svf_tf.data.to_base_annotation` (base class c -> position in the fold's
base list + 1, other classes -> 0, 255 kept) and written to
`<output_dir>/<split>/<fold>/<label file name>`, BAM's layout. The dataset
folder is never written to. Training does not need these files (the pipeline
remaps on the fly); they are for inspection and for comparing with BAM.

    python scripts/make_base_annotations.py --dataset=pascal --synthetic --fold=0 \
        --output_dir=/tmp/base_annotation/pascal
"""

import os

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402
from svf_tf.data import build_fold_lists, ensure_synthetic_dataset, fold_classes  # noqa: E402
from svf_tf.data.cache import check_cache_dir, check_outside  # noqa: E402
from svf_tf.data.lists.base_annotation import write_base_annotations  # noqa: E402

# The data flags of main.py, from the same settings (svf_tf/config/experiment.py).
define_flags(names=("dataset", "data_root", "synthetic", "fold", "train_list", "val_list",
                    "coco_split", "cache_dir"))
flags.DEFINE_list("splits", ["train", "val"], "Splits to write.")
flags.DEFINE_string("output_dir", None, "Output root (outside the dataset root).")
flags.DEFINE_bool("overwrite", False, "Rewrite existing files.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected arguments {argv[1:]}: every option is a --flag.")
    if not FLAGS.output_dir:
        raise ValueError("Pass --output_dir=DIR (outside the dataset root).")
    cache = check_cache_dir(FLAGS.cache_dir)
    if FLAGS.synthetic:
        data_root = os.path.join(cache, "synthetic_pascal")  # where main.py keeps it
    elif FLAGS.data_root:
        data_root = FLAGS.data_root
    else:
        raise ValueError("Pass --data_root=DIR (the dataset root) or --synthetic.")
    if FLAGS.synthetic or os.path.isdir(data_root):
        check_outside(FLAGS.output_dir, data_root, "Output directory", "--output_dir")
    paths.ensure_writable_dir(FLAGS.output_dir, "--output_dir", create=False)
    if FLAGS.synthetic:
        data_root = ensure_synthetic_dataset(data_root)
    classes = fold_classes(FLAGS.dataset, FLAGS.fold, coco_split=FLAGS.coco_split)
    for split in FLAGS.splits:
        lists = build_fold_lists(
            FLAGS.dataset, data_root, FLAGS.fold, split,
            list_file=FLAGS.train_list if split == "train" else FLAGS.val_list,
            coco_split=FLAGS.coco_split, cache_dir=FLAGS.cache_dir)
        out = os.path.join(FLAGS.output_dir, split, str(FLAGS.fold))
        counts = write_base_annotations([label for _, label in lists.items], classes, out,
                                        overwrite=FLAGS.overwrite)
        print(f"{split} fold {FLAGS.fold}: {counts['written']} written, {counts['kept']} kept "
              f"-> {out} (base classes {list(classes.base)} -> 1..{len(classes.base)})")


if __name__ == "__main__":
    cli.run(main)
