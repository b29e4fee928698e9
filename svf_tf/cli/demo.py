"""`--mode=demo`: frozen backbone vs SVF on the built-in synthetic dataset.

The README's first command. With no dataset and no internet it trains and
evaluates the SVF paper's baseline twice through the real training path,
once with a frozen backbone and once with SVF (singular values of layer2-4),
at a reduced resolution, and prints a comparison table. ImageNet weights are
used when Keras' file is already in its cache; otherwise the backbone starts
from random weights and the demo says so.
"""

import dataclasses
import os

from svf_tf.cli.train import train
from svf_tf.config.experiment import ExperimentConfig
from svf_tf.runs.run_files import write_json
from svf_tf.weights.pretrained import resolve_weights

# Sizes chosen so that both runs finish in under 10 minutes on 2 CPU cores
# (measured: 4 epochs of 30 steps took 11.5 minutes, 3 of 25 took 10.1; 2 of
# 25 take 6-8 minutes, freeze and SVF about as long as each other).
# The synthetic images (160-320 px) are tested resized to 65 px, about 0.25 of
# their size, so training scales them by 0.2-0.3 before the 65 px crop: the
# crop then holds the whole image at test-time scale, as a 473 crop does on
# Pascal (the preset's 0.9-1.1 would train on 65 px windows at full size).
DEMO_SETTINGS = {"train_size": 65, "test_size": 65, "scale_range": (0.2, 0.3), "epochs": 2,
                 "steps_per_epoch": 25, "batch_size": 8, "test_episodes": 100, "eval_every": 1,
                 "early_stop": 0, "lr": 0.05, "lr_schedule": "constant"}


def demo_configs(base):
    """The two runs compared: frozen backbone and SVF, otherwise identical.

    The demo's sizes apply except where the user changed a flag from its
    default (e.g. --epochs=10 or --backbone=vgg16).
    """
    defaults = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}
    changed = {k: v for k, v in dataclasses.asdict(base).items() if v != defaults[k]}
    common = {**dataclasses.asdict(base), **DEMO_SETTINGS, **changed,
              "synthetic": True, "dataset": "pascal"}
    if base.backbone == "resnet50" and base.stem is None:
        common["stem"] = "keras"  # the stem Keras' ImageNet weights fit
    return {finetune: ExperimentConfig(**{**common, "finetune": finetune,
                                          "work_dir": os.path.join(base.work_dir, finetune)})
            for finetune in ("freeze", "svf")}


def format_table(results):
    lines = [f"{'backbone':<10} {'mIoU':>7} {'FB-IoU':>7} {'trainable values':>17} "
             f"{'backbone values':>16} {'minutes':>8}"]
    for name, summary in results.items():
        report = summary["last_eval"] or {}
        best = summary["best_miou"] or 0.0
        lines.append(f"{name:<10} {100 * best:7.2f} {100 * report.get('fb_iou', 0.0):7.2f} "
                     f"{summary['svf_trainable_values'] + summary['other_trainable_values']:>17,}"
                     f" {summary['svf_trainable_values']:>16,} {summary['seconds'] / 60:8.1f}")
    return "\n".join(lines)


def run_demo(base_config, strategy, log=print):
    """Trains and evaluates both runs; returns {"freeze": summary, "svf": summary}."""
    try:
        weights = resolve_weights("imagenet", base_config.backbone, download=False)
        log(f"{base_config.backbone}: ImageNet weights from Keras' cache ({weights})")
    except (FileNotFoundError, ValueError):
        weights = None
        log(f"{base_config.backbone}: no ImageNet weights in Keras' cache; random "
            "initialisation (mIoU is then far below the paper's)")
    base_config = dataclasses.replace(base_config, weights=weights, synthetic=True)
    results = {}
    for name, config in demo_configs(base_config).items():
        log(f"\n=== {name}: {config.method} with a "
            f"{'frozen' if name == 'freeze' else 'SVF'} {config.backbone} ===")
        results[name] = train(config, strategy, log)
    table = format_table(results)
    log("\nbest validation mIoU on the synthetic dataset's novel classes (fold "
        f"{base_config.fold}, {base_config.shot}-shot, {DEMO_SETTINGS['test_episodes']} "
        "episodes):\n" + table)
    write_json(os.path.join(base_config.run_dir, "summary.json"),
               {"mode": "demo", "weights": weights or "random", "table": table,
                "runs": {k: {key: v[key] for key in ("best_miou", "last_eval",
                                                      "svf_trainable_values",
                                                      "other_trainable_values", "seconds",
                                                      "work_dir")}
                         for k, v in results.items()}})
    return results
