"""Builds (or reads from cache) one fold's lists and prints their sizes.

Prints the number of training images with the † filter (images with any
novel-class pixel dropped, as in BAM/SVF) and without it (original PFENet),
the number of validation images, and each class's support-pool size (images
where the class covers at least 2048 pixels). The lists come from
`svf_tf.data.build_fold_lists`, the function training uses, and are also
written as plain text to the cache directory.

    python scripts/make_lists.py --dataset=pascal --data_root=/data/VOCdevkit/VOC2012 --fold=0
    python scripts/make_lists.py --dataset=pascal --synthetic --fold=0 --json
"""

import json
import os

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402
from svf_tf.data import build_fold_lists, ensure_synthetic_dataset  # noqa: E402
from svf_tf.data.cache import check_cache_dir  # noqa: E402
from svf_tf.data.lists.class_splits import PASCAL_CLASS_NAMES  # noqa: E402

# The data flags of main.py, from the same settings (svf_tf/config/experiment.py).
define_flags(names=("dataset", "data_root", "synthetic", "fold", "train_list", "val_list",
                    "coco_split", "cache_dir"))
flags.DEFINE_bool("json", False, "Print the summary as JSON.")
FLAGS = flags.FLAGS


def summarize(dataset, data_root, fold, *, train_list=None, val_list=None,
              coco_split="interleaved", cache_dir=None, progress=True) -> dict:
    """The numbers this script prints, from `build_fold_lists`."""
    options = dict(coco_split=coco_split, cache_dir=cache_dir, progress=progress)
    dagger = build_fold_lists(dataset, data_root, fold, "train", list_file=train_list,
                              filter_novel=True, **options)
    plain = build_fold_lists(dataset, data_root, fold, "train", list_file=train_list,
                             filter_novel=False, **options)
    val = build_fold_lists(dataset, data_root, fold, "val", list_file=val_list, **options)
    return {
        "dataset": dataset, "fold": fold, "data_root": os.path.abspath(data_root),
        "coco_split": coco_split if dataset == "coco" else None,
        "train_images_dagger": len(dagger.items),
        "train_images_no_filter": len(plain.items),
        "val_images": len(val.items),
        "pools": {
            "train_dagger": {str(c): n for c, n in dagger.pool_sizes().items()},
            "train_no_filter": {str(c): n for c, n in plain.pool_sizes().items()},
            "val": {str(c): n for c, n in val.pool_sizes().items()},
        },
        "list_files": {"train_dagger": dagger.list_path, "train_no_filter": plain.list_path,
                       "val": val.list_path},
    }


def _class_name(dataset, c):
    return PASCAL_CLASS_NAMES[int(c)] if dataset == "pascal" else f"class {c}"


def format_text(summary: dict) -> str:
    """The human-readable version of `summarize`'s output."""
    lines = [
        f"{summary['dataset']} fold {summary['fold']}  ({summary['data_root']})",
        f"  train images, novel classes filtered (dagger): {summary['train_images_dagger']}",
        f"  train images, no filter (original PFENet):     {summary['train_images_no_filter']}",
        f"  val images:                                    {summary['val_images']}",
        "  support-pool sizes (images where the class covers >= 2048 px):",
    ]
    for name, pools in summary["pools"].items():
        lines.append(f"    {name}:")
        lines += [f"      {c:>3} {_class_name(summary['dataset'], c):<12} {n}"
                  for c, n in pools.items()]
    lines.append("  plain-text lists:")
    lines += [f"    {name}: {path}" for name, path in summary["list_files"].items()]
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected arguments {argv[1:]}: every option is a --flag.")
    cache = check_cache_dir(FLAGS.cache_dir)
    if FLAGS.synthetic:
        if FLAGS.dataset != "pascal":
            raise ValueError("--synthetic is in Pascal layout: use it with --dataset=pascal.")
        data_root = ensure_synthetic_dataset(os.path.join(cache, "synthetic_pascal"))
    elif FLAGS.data_root:
        data_root = FLAGS.data_root
    else:
        raise ValueError("Pass --data_root=DIR (the dataset root) or --synthetic.")
    summary = summarize(FLAGS.dataset, data_root, FLAGS.fold, train_list=FLAGS.train_list,
                        val_list=FLAGS.val_list, coco_split=FLAGS.coco_split,
                        cache_dir=FLAGS.cache_dir, progress=not FLAGS.json)
    print(json.dumps(summary, indent=2) if FLAGS.json else format_text(summary))


if __name__ == "__main__":
    cli.run(main)
