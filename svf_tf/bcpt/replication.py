"""BCPT vs Standard pre-training on the built-in synthetic dataset: the experiment's plan.

`scripts/replicate_bcpt.py` runs it. For each seed, from the synthetic
pre-trained ResNet-50 (the offline stand-in for ImageNet), the jobs are
`main.py` commands, so each is a command a user can run alone:

1. pretrain: `--mode=pretrain --pretrain=standard|bcpt` on fold 0's base
   classes (the BCPT paper's first stage, Sec. 3.1), one recipe for both;
2. prior: `--mode=eval_prior` (the paper's Table 2: PFENet's prior
   thresholded, no head) of four backbones: random (initialised with the
   seed), the start, and the two pre-trained ones;
3. meta: `--mode=train --finetune=freeze` (Table 1: the SVF paper's baseline
   meta-trained on the frozen backbone) on each of the four.

The settings scale the papers' recipes to this data: pre-training uses the
demo's optimiser for 10 epochs of the train list, half the meta-training's 20,
as BAM's 100 stage-1 epochs are half its 200 meta-training epochs on
Pascal-5i (BAM `config/pascal/*_base.yaml` and `*_split0_resnet50.yaml`);
meta-training is the demo's (`svf_tf.config.modes.DEMO_SETTINGS`).

TensorFlow-free.
"""

import os
import statistics
import subprocess
import sys
import time

from svf_tf.config.modes import DEMO_SETTINGS
from svf_tf.runs.run_files import read_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")

STAGES = ("pretrain", "prior", "meta")
SCHEMES = ("standard", "bcpt")
BACKBONES = ("random", "start", "standard", "bcpt")

# The common flags: the synthetic dataset, fold 0, ResNet-50 with the synthetic start's
# variant (Keras' stem) and the baseline's dilation, at the demo's sizes and scales.
COMMON = {"synthetic": True, "fold": 0, "backbone": "resnet50", "stem": "keras",
          "dilation": "torchvision", "test_size": DEMO_SETTINGS["test_size"]}
TRAINING = {key: DEMO_SETTINGS[key] for key in ("train_size", "scale_range", "batch_size")}
# Pre-training (Standard and BCPT alike): the demo's optimiser (its lr for the head, 0.1x for
# the backbone), half the demo's epochs of the base-class train list, scored every epoch.
PRETRAIN = {"epochs": DEMO_SETTINGS["epochs"] // 2, "steps_per_epoch": 0,
            "lr": DEMO_SETTINGS["lr"], "lr_schedule": DEMO_SETTINGS["lr_schedule"],
            "eval_every": 1, "early_stop": 0}
# Table 2: 300 test episodes of fold 0's novel classes, threshold 0.5, 1-shot.
PRIOR = {"shot": 1, "test_episodes": 300, "prior_threshold": 0.5}
# Table 1: the demo's meta-training, frozen backbone.
META = {"method": "baseline", "finetune": "freeze", "shot": 1,
        **{key: DEMO_SETTINGS[key] for key in ("epochs", "steps_per_epoch", "lr", "lr_schedule",
                                               "test_episodes", "eval_every", "early_stop")}}
TINY = {"train_size": 33, "test_size": 33, "batch_size": 2, "epochs": 1, "steps_per_epoch": 2,
        "test_episodes": 3, "eval_every": 1}


def command(values):
    """`main.py` with `values` as flags, in a stable order."""
    args = [sys.executable, MAIN]
    for name, value in values.items():
        if value is True:
            args.append(f"--{name}")
        elif isinstance(value, tuple | list):
            args.append(f"--{name}={','.join(str(item) for item in value)}")
        elif value is not None:
            args.append(f"--{name}={value}")
    return args


def plan(seed, out_dir, start_weights, cache_dir, tiny):
    """The jobs of one seed: (stage, backbone, run_dir, flags), in order."""
    common = {**COMMON, "seed": seed, "cache_dir": cache_dir}
    scale = TINY if tiny else {}
    pretrained = {scheme: os.path.join(out_dir, f"pretrain_{scheme}", f"seed{seed}")
                  for scheme in SCHEMES}
    weights = {"random": None, "start": start_weights,
               **{scheme: os.path.join(run, "best", "backbone.weights.h5")
                  for scheme, run in pretrained.items()}}
    jobs = []
    for scheme, run in pretrained.items():
        jobs.append(("pretrain", scheme, run,
                     {"mode": "pretrain", "pretrain": scheme, **common, **TRAINING, **PRETRAIN,
                      "weights": start_weights,
                      **{key: value for key, value in scale.items() if key != "test_episodes"},
                      "work_dir": run}))
    prior_dir = os.path.join(out_dir, "prior", f"seed{seed}")
    for backbone in BACKBONES:
        jobs.append(("prior", backbone, prior_dir,
                     {"mode": "eval_prior", **common, **PRIOR, "weights": weights[backbone],
                      **{key: scale[key] for key in ("test_size", "test_episodes") if scale},
                      "work_dir": prior_dir}))
    for backbone in BACKBONES:
        run = os.path.join(out_dir, f"meta_{backbone}", f"seed{seed}")
        jobs.append(("meta", backbone, run,
                     {"mode": "train", **common, **TRAINING, **META, "weights": weights[backbone],
                      **scale, "work_dir": run}))
    return jobs


def prior_key(values):
    return f"{values['weights'] or 'random'} @ {values['prior_threshold']:g}"


def finished(stage, run_dir, values):
    """The job's result if it has finished, else None."""
    path = os.path.join(run_dir, "eval_prior.json" if stage == "prior" else "summary.json")
    if not os.path.isfile(path):
        return None
    result = read_json(path)
    return result.get(prior_key(values)) if stage == "prior" else result


def run_job(number, total, stage, backbone, run_dir, values, log_dir):
    """Runs one job's `main.py` command, its output into `log_dir`; ValueError if it fails."""
    args = command(values)
    log_file = os.path.join(log_dir, f"{stage}_{backbone}_seed{values['seed']}.log")
    print(f"[{number}/{total}] {stage} {backbone}, seed {values['seed']} "
          f"(log: {log_file})\n  {' '.join(args[1:])}", flush=True)
    start = time.perf_counter()
    with open(log_file, "a") as log:
        code = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        raise ValueError(f"{stage} {backbone} (seed {values['seed']}) failed with exit code "
                         f"{code}; its output is in {log_file}; rerun to resume.")
    print(f"  done in {(time.perf_counter() - start) / 60:.1f} minutes", flush=True)


def record(stage, result):
    """The numbers of one finished job."""
    if stage == "prior":
        return {"miou": result["summary"]["miou_mean"],
                "fb_iou": result["summary"]["fb_iou_mean"]}
    numbers = {"steps": result["steps"], "train_minutes": result["train_seconds"] / 60}
    if stage == "pretrain":
        numbers["base_class_best_miou"] = result["best_miou"]
        numbers["history"] = [{key: entry[key] for key in ("epoch", "miou", "fb_iou")
                               if key in entry} for entry in result["history"]]
        return numbers
    best, last = result["best_eval"] or {}, result["last_eval"] or {}
    numbers.update(best_miou=best.get("miou"), best_fb_iou=best.get("fb_iou"),
                   best_epoch=best.get("epoch"), last_miou=last.get("miou"),
                   last_fb_iou=last.get("fb_iou"),
                   curve=[{key: entry[key] for key in ("epoch", "miou", "fb_iou")}
                          for entry in result["history"] if "miou" in entry])
    return numbers


def mean_std(values):
    """Mean and sample standard deviation (0 for one value) of the values that exist."""
    values = [value for value in values if value is not None]
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def summarize(runs):
    """Per backbone, the prior's and the meta-trained model's numbers over seeds."""
    table = {}
    for backbone in BACKBONES:
        prior = [run["numbers"] for run in runs
                 if run["stage"] == "prior" and run["backbone"] == backbone]
        meta = [run["numbers"] for run in runs
                if run["stage"] == "meta" and run["backbone"] == backbone]
        table[backbone] = {
            "prior_miou": mean_std([n["miou"] for n in prior]),
            "prior_fb_iou": mean_std([n["fb_iou"] for n in prior]),
            **{f"meta_{key}": mean_std([n[key] for n in meta])
               for key in ("best_miou", "best_fb_iou", "last_miou", "last_fb_iou")}}
    return table


LABELS = {"random": "random", "start": "synthetic pre-trained (the start)",
          "standard": "start + Standard pre-training", "bcpt": "start + BCPT pre-training"}


def cell(stat):
    if stat is None:
        return "-"
    text = f"{100 * stat['mean']:.2f}"
    return text + (f" +- {100 * stat['std']:.2f}" if stat["n"] > 1 else "") + \
        f" ({stat['n']})"


def markdown(table, runs):
    lines = ["| backbone | prior mIoU | prior FB-IoU | frozen meta-training mIoU, best | "
             "FB-IoU, best | mIoU, last | FB-IoU, last |", "|---|---|---|---|---|---|---|"]
    for backbone, row in table.items():
        lines.append(f"| {LABELS[backbone]} | " + " | ".join(cell(row[key]) for key in (
            "prior_miou", "prior_fb_iou", "meta_best_miou", "meta_best_fb_iou",
            "meta_last_miou", "meta_last_fb_iou")) + " |")
    lines.append("")
    lines.append("mean +- sample std over seeds (number of seeds); 'best' is the best of the "
                 "evaluations every 5 epochs (the references' selection on the test episodes), "
                 "'last' the final one.")
    for run in runs:
        if run["stage"] == "pretrain":
            numbers = run["numbers"]
            lines.append(f"- pre-training {run['backbone']}, seed {run['seed']}: "
                         f"{numbers['steps']} steps, {numbers['train_minutes']:.1f} minutes, "
                         f"best base-class mIoU {100 * numbers['base_class_best_miou']:.2f}")
    return "\n".join(lines) + "\n"


