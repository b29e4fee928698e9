"""The SVF paper's fine-tuning comparison (Tables 5, 6, 8; Figures 2, 3, 7) on built-in data.

    python scripts/replicate_finetuning.py                    # 10 settings x 3 seeds
    python scripts/replicate_finetuning.py --quick            # 10 settings x 1 seed, short
    python scripts/replicate_finetuning.py --settings=freeze,svf_234 --seeds=1,2

Trains the SVF paper's baseline (ResNet-50 by default, fold 0, 1-shot) on the
built-in synthetic dataset at 65 px with each backbone setting of the paper's
Tables 5, 6 and 8 (`svf_tf.finetune_comparison.settings_table`: frozen,
fine-tuning layers 1-4 / 2-4 / 3-4 / 4, only the 3x3 or 1x1 convolutions,
SVF of layers 2-4 / 3-4 / 4), once per seed, each run a real training run in
its own run directory under --out_dir. After every epoch a run is scored on
the test episodes of the novel classes (validation, as the references) and
on few-shot episodes of the base classes it trains on, so over-fitting shows.
A rerun skips finished runs and resumes killed ones. Writes into --out_dir:

- results.json: every setting shared by the runs, every run (seed,
  fine-tuning options, trainable values, per-epoch history, numbers) and per
  setting the mean and sample standard deviation over seeds and the mean
  curves the figure is drawn from;
- results.md (also printed): the table;
- curves.png: per-epoch base-class (training) and novel-class (test) mIoU,
  one colour per setting.

The backbone starts from the synthetic pre-trained weights of
`svf_tf.weights.synthetic_backbone` (made on first use and cached), or
--weights=<file>, or random weights with --random_weights (then the numbers
say nothing about fine-tuning a pre-trained backbone).

On 2 CPU cores the default (30 runs long enough for the heads to learn)
takes about 20 hours and is resumable; --quick (10 runs, 11-14 minutes) and
--tiny (for tests) only check the path: their runs are too short to learn.
A GPU is used when present.
"""

import json
import os
import sys
import time

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags, logging  # noqa: E402

from svf_tf.atomic_files import write_file_atomically  # noqa: E402
from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402
from svf_tf.finetune_comparison.settings_table import NAMES, REDUCED  # noqa: E402

# The flags shared with main.py, from the same settings (svf_tf/config/experiment.py);
# a preset (below) replaces the defaults of those the command line does not give.
SHARED = ("backbone", "stem", "fold", "shot", "epochs", "steps_per_epoch", "batch_size", "lr",
          "backbone_lr_ratio", "test_episodes", "scale_range", "cache_dir", "strategy")
define_flags(names=SHARED)
# The backbone's start, from the same setting as main.py's --weights (a file or
# 'imagenet'); unset here means the synthetic pre-trained backbone, not random weights.
define_flags(names=("weights",))
flags.DEFINE_string("out_dir", "runs/replicate_finetuning",
                    "Directory of the comparison: one run directory per setting and seed, "
                    "results.json, results.md, curves.png.")
flags.DEFINE_list("settings", [], f"Settings to run (default all; VGG16 has no part_1x1): "
                  f"{','.join(NAMES)}.")
flags.DEFINE_list("seeds", None, "Run seeds (default: 321,322,323; --quick and --tiny: 321).")
flags.DEFINE_integer("size", None, "Training crop and test size, (size - 1) % 8 == 0 "
                     "(default 65; --tiny 33).", lower_bound=17)
flags.DEFINE_integer("base_episodes", None, "Base-class episodes scored after every epoch "
                     "(default 40; --quick and --tiny: as --test_episodes).", lower_bound=1)
flags.DEFINE_bool("random_weights", False, "Start from random backbone weights instead of the "
                  "synthetic pre-trained backbone (the numbers then say nothing about "
                  "fine-tuning a pre-trained backbone).")
flags.DEFINE_bool("quick", False, "All settings, one seed, short runs: under 15 minutes on 2 "
                  "CPU cores.")
flags.DEFINE_bool("tiny", False, "Seconds-long runs at 33 px for tests (numbers meaningless).")
flags.DEFINE_bool("keep_checkpoints", False, "Keep each finished run's checkpoints (by "
                  "default they are deleted; the numbers stay in its summary.json).")
FLAGS = flags.FLAGS

# Sizes from costs measured on this 2-core CPU (ResNet-50, 65 px, batch 8, CPU seconds, the
# machine shared): a training step 2.1 (frozen) to 4.6 (layers 1-4 trained), SVF 3.3; a test
# or base-class episode 0.25-0.34; per run about 45 more (model build, SVD, tracing); wall
# time is about 0.6-0.7 of CPU time on two cores. The heads need runs this long: with the
# synthetic pre-trained ResNet-50 they predict background everywhere until about 500 steps
# (measured in the demo's runs, svf_tf/config/modes.py; neither AdamW at 1e-3 nor SGD at
# 0.2 predicted any foreground by 200 steps either). So the default trains each run as the
# demo does (20 epochs of the whole train list, 880 steps) and scores 100 test and 40
# base-class episodes after every epoch: 25-55 minutes a run, about 20 hours for the 30
# runs on 2 CPU cores (resumable: a rerun skips finished runs). --quick's 10 runs (11-14
# minutes) and --tiny check the path; their runs are too short to learn and score about 0.
PRESETS = {
    "default": {"epochs": 20, "steps_per_epoch": 0, "test_episodes": 100, "base_episodes": 40,
                "seeds": (321, 322, 323), "size": 65},
    "quick": {"epochs": 2, "steps_per_epoch": 8, "test_episodes": 20, "seeds": (321,),
              "size": 65},
    "tiny": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "test_episodes": 4,
             "seeds": (321,), "size": 33},
}


def log(line):
    print(line, flush=True)  # progress shows in a log file as it happens


def preset_name():
    if FLAGS.quick and FLAGS.tiny:
        raise ValueError("--quick and --tiny were both given; choose one.")
    return "quick" if FLAGS.quick else "tiny" if FLAGS.tiny else "default"


def parse_seeds(texts):
    seeds = []
    for text in texts:
        if not text.strip().isdigit():
            raise ValueError(f"--seeds={','.join(texts)} is not accepted: give non-negative "
                             "integers separated by commas, e.g. 321,322,323.")
        seeds.append(int(text))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds={','.join(texts)} repeats a seed; give each once.")
    return tuple(seeds)


def shared_values(preset):
    """The settings every run shares (flag name -> value): the flags, else the preset."""
    values = {}
    for name in SHARED:
        if FLAGS[name].present:
            values[name] = FLAGS[name].value
        elif name in preset:
            values[name] = preset[name]
        elif name in REDUCED:
            continue  # the comparison's own value (settings_table.REDUCED)
        elif FLAGS[name].value is not None:
            values[name] = FLAGS[name].value
    size = FLAGS.size or preset["size"]
    values.update(train_size=size, test_size=size)
    return values


def resolve_weights(backbone, cache_dir):
    """The backbone weights every run starts from (a path or None), and what they are."""
    if FLAGS.weights and FLAGS.random_weights:
        raise ValueError("--weights and --random_weights were both given; choose one.")
    if FLAGS.random_weights:
        return None, "random weights"
    if FLAGS.weights == "imagenet":
        from svf_tf.weights.pretrained import resolve_weights as resolve_imagenet

        return resolve_imagenet("imagenet", backbone), "ImageNet weights"
    if FLAGS.weights:
        if not os.path.isfile(FLAGS.weights):
            raise FileNotFoundError(f"--weights={FLAGS.weights!r}: no such file; give a "
                                    f"{backbone} .weights.h5 file, or leave --weights out for "
                                    "the synthetic pre-trained backbone.")
        return os.path.abspath(FLAGS.weights), f"weights {os.path.basename(FLAGS.weights)}"
    from svf_tf.weights.synthetic_backbone import ensure_synthetic_backbone

    return (ensure_synthetic_backbone(backbone, cache_dir=cache_dir, log=log),
            "synthetic pre-trained weights")


def describe(values, seeds, base_episodes, weights):
    steps = values["steps_per_epoch"]
    epoch = f"{steps} steps" if steps else "the whole train list"
    return (f"SVF baseline on {values.get('backbone', 'resnet50')} ({weights}); synthetic "
            f"dataset, fold {values.get('fold', 0)}, "
            f"{values.get('shot', 1)}-shot, {values['train_size']} px; {values['epochs']} "
            f"epochs x {epoch} in batches of "
            f"{values.get('batch_size', REDUCED['batch_size'])}, lr "
            f"{values.get('lr', REDUCED['lr'])} constant (backbone x "
            f"{values.get('backbone_lr_ratio', REDUCED['backbone_lr_ratio'])}); every epoch "
            f"scored on {values['test_episodes']} test episodes (novel classes) and "
            f"{base_episodes} training episodes (base classes); seeds "
            f"{','.join(map(str, seeds))}.")


def short_title(values, seeds, weights):
    return (f"SVF baseline on {values.get('backbone', 'resnet50')} ({weights}), synthetic "
            f"fold {values.get('fold', 0)}, {values.get('shot', 1)}-shot, "
            f"{values['train_size']} px, {values['epochs']} epochs"
            f"{f' x {steps} steps' if (steps := values['steps_per_epoch']) else ''}, "
            f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}")


def write_markdown(path, title, table):
    text = (f"# Fine-tuning comparison on the synthetic dataset\n\n{title}\n\n{table}\n\n"
            "Percentages; mean ± sample standard deviation over seeds. \"best epoch\": the "
            "epoch with the best novel-class mIoU (the references' checkpoint selection); "
            "\"last epoch\": no selection. Base mIoU: the same model on few-shot episodes of "
            "the classes it trained on. The paper column is Pascal-5i with ImageNet weights "
            "(4-fold mean), for reference only.\n\n![curves](curves.png)\n")
    write_file_atomically(path, text)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    preset = PRESETS[preset_name()]
    seeds = parse_seeds(FLAGS.seeds) if FLAGS.seeds else preset["seeds"]
    out_dir = paths.ensure_writable_dir(FLAGS.out_dir, "--out_dir")
    from svf_tf.finetune_comparison.settings_table import select_settings

    settings = select_settings(FLAGS.settings, FLAGS.backbone)
    values = shared_values(preset)
    base_episodes = (FLAGS.base_episodes or preset.get("base_episodes")
                     or values["test_episodes"])
    start = time.time()
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint chatter

    from svf_tf.data.cache import check_cache_dir
    from svf_tf.finetune_comparison.curves import plot_curves
    from svf_tf.finetune_comparison.results import aggregate, format_table
    from svf_tf.finetune_comparison.runner import run_comparison
    from svf_tf.runs.interrupts import TrainingInterrupted
    from svf_tf.runs.strategy import make_strategy

    check_cache_dir(FLAGS.cache_dir)
    values["weights"], weights = resolve_weights(FLAGS.backbone, FLAGS.cache_dir)
    if values["weights"] is None:
        log("random backbone weights (--random_weights): the numbers say nothing about "
            "fine-tuning a pre-trained backbone")
    title = describe(values, seeds, base_episodes, weights)
    log(title)
    try:
        records = run_comparison(settings, seeds, out_dir, values,
                                 strategy=make_strategy(values.get("strategy", "auto")),
                                 base_episodes=base_episodes,
                                 keep_checkpoints=FLAGS.keep_checkpoints, log=log)
    except TrainingInterrupted as stop:
        print(f"{stop.message()} The finished runs are kept; the rerun skips them.",
              file=sys.stderr)
        sys.exit(stop.exit_code)
    rows = aggregate(settings, records)
    table = format_table(rows)
    plot_curves(rows, os.path.join(out_dir, "curves.png"), title=short_title(values, seeds,
                                                                             weights))
    write_markdown(os.path.join(out_dir, "results.md"), title, table)
    minutes = (time.time() - start) / 60
    results = {
        "format": 1, "command": sys.argv, "preset": preset_name(), "description": title,
        "shared_settings": {**REDUCED, **values}, "seeds": list(seeds),
        "base_episodes": base_episodes, "std": "sample standard deviation over seeds (ddof=1)",
        "figure": {"file": "curves.png", "panels": ["train_base_miou", "val_novel_miou"],
                   "drawn_from": "settings[*].curves (mean over seeds, +- std band)"},
        "settings": rows, "runs": records, "table": table, "minutes": round(minutes, 2),
    }
    write_file_atomically(os.path.join(out_dir, "results.json"),
                          json.dumps(results, indent=2, default=list))
    log(f"\n{title}\n\n{table}\n\n{minutes:.1f} min; wrote {out_dir}/results.json, "
        "results.md, curves.png")


if __name__ == "__main__":
    cli.run(main)
