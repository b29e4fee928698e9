"""From run summaries to the comparison's numbers: per run, per setting (mean and std), table.

Per run (`run_record`), from its summary.json and per-epoch history:
- novel-class mIoU and FB-IoU at the best epoch (the references' protocol:
  the checkpoint with the best validation mIoU on the test episodes) and at
  the last epoch (no selection on the test episodes);
- base-class mIoU (few-shot episodes of the training classes,
  `svf_tf.metrics.base_class_episodes`) at the last epoch and at the best one;
- how many values train (in the backbone, singular values, in total), the
  time (summary.json's: the job that finished the run, so a resumed run
  counts only its last job), and the per-epoch curves.

Per setting (`aggregate`): the mean and the sample standard deviation
(ddof=1, the spread one seed's result has around the mean; None for a single
seed) over the seeds of each number, and the mean curve per epoch. Numbers
are fractions in the JSON; the table shows percentages.
"""

import math

import numpy as np

from svf_tf.tasks.base_class_tracking import BASE_FB_IOU, BASE_MIOU

#: The per-run numbers that are averaged over seeds, and their table headers.
METRICS = {
    "novel_miou_best": "novel mIoU (best epoch)",
    "novel_fb_iou_best": "novel FB-IoU (best epoch)",
    "novel_miou_last": "novel mIoU (last epoch)",
    "base_miou_last": "base mIoU (last epoch)",
    "base_miou_at_best": "base mIoU (best epoch)",
    "seconds": "seconds per run",
}
#: The curves drawn per setting: epoch-record key -> curve name.
CURVES = {BASE_MIOU: "train_base_miou", "miou": "val_novel_miou"}


def run_record(setting, seed, summary):
    """One run's numbers (see the module docstring) from its `summary` dict.

    Raises:
        ValueError: the history has no validated epoch, or no base-class
            scores (a run not trained by this comparison).
    """
    evaluated = [record for record in summary["history"] if "miou" in record]
    if not evaluated:
        raise ValueError(f"The run in {summary['work_dir']!r} has no validated epoch; "
                         "remove its directory and run again.")
    if any(BASE_MIOU not in record for record in evaluated):
        raise ValueError(f"The run in {summary['work_dir']!r} has no base-class scores "
                         f"({BASE_MIOU!r}) in its history: it was not trained by this "
                         "comparison; remove its directory or use another --out_dir.")
    scores = [record["miou"] for record in evaluated]
    best, last = evaluated[int(np.argmax(scores))], evaluated[-1]  # first best, as the loop
    svf, other = summary["svf_trainable_values"], summary["other_trainable_values"]
    return {
        "setting": setting.name,
        "seed": seed,
        "options": dict(setting.options),
        "work_dir": summary["work_dir"],
        "trainable_values": {"backbone": summary.get("backbone_trainable_values"),
                             "singular_values": svf, "total": svf + other},
        "best_epoch": best["epoch"],
        "novel_miou_best": best["miou"],
        "novel_fb_iou_best": best["fb_iou"],
        "novel_miou_last": last["miou"],
        "novel_fb_iou_last": last["fb_iou"],
        "base_miou_last": last[BASE_MIOU],
        "base_fb_iou_last": last[BASE_FB_IOU],
        "base_miou_at_best": best[BASE_MIOU],
        "seconds": summary["train_seconds"],  # every epoch of the run, however often resumed
        "steps": summary["steps"],
        "history": [{key: record[key] for key in
                     ("epoch", "loss", "seconds", "miou", "fb_iou", BASE_MIOU, BASE_FB_IOU)
                     if key in record} for record in summary["history"]],
    }


def mean_std(values):
    """{"mean", "std" (sample, ddof=1; None for one value), "values"} of numbers."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value.")
    array = np.asarray(values, np.float64)
    std = float(array.std(ddof=1)) if len(values) > 1 else None
    return {"mean": float(array.mean()), "std": std, "values": values}


def _curve(records, key):
    epochs = [record["epoch"] for record in records[0]["history"] if key in record]
    per_seed = []
    for record in records:
        points = {entry["epoch"]: entry[key] for entry in record["history"] if key in entry}
        if sorted(points) != epochs:
            raise ValueError(
                f"Setting {record['setting']!r}: seed {record['seed']} has epochs "
                f"{sorted(points)}, seed {records[0]['seed']} has {epochs}; every seed of a "
                "setting must run the same epochs.")
        per_seed.append([points[epoch] for epoch in epochs])
    array = np.asarray(per_seed, np.float64)
    std = array.std(axis=0, ddof=1).tolist() if len(per_seed) > 1 else None
    return {"epochs": epochs, "mean": array.mean(axis=0).tolist(), "std": std,
            "per_seed": per_seed}


def aggregate(settings, records):
    """Per setting (in `settings` order): its description, mean/std of `METRICS`, mean curves.

    Args:
        settings: the `ComparedSetting`s run.
        records: `run_record`s, any order; each setting needs at least one.

    Returns:
        A list of dicts: name, label, table, config, published_miou,
        options, seeds, trainable_values (of the first seed), metrics
        ({key: mean_std}), curves ({curve name: {epochs, mean, std,
        per_seed}}).
    """
    rows = []
    for setting in settings:
        runs = sorted((r for r in records if r["setting"] == setting.name),
                      key=lambda r: r["seed"])
        if not runs:
            raise ValueError(f"No run of setting {setting.name!r} to aggregate.")
        rows.append({
            "name": setting.name, "label": setting.label, "table": setting.table,
            "config": setting.config, "published_miou": setting.published_miou,
            "options": dict(setting.options), "seeds": [r["seed"] for r in runs],
            "trainable_values": runs[0]["trainable_values"],
            "metrics": {key: mean_std([r[key] for r in runs]) for key in METRICS},
            "curves": {name: _curve(runs, key) for key, name in CURVES.items()},
        })
    return rows


def format_number(summary, scale=100.0, digits=2):
    """"mean ± std" of a `mean_std` dict, scaled (percent by default); the mean alone for one."""
    mean = f"{scale * summary['mean']:.{digits}f}"
    if summary["std"] is None or math.isnan(summary["std"]):
        return mean
    return f"{mean} ± {scale * summary['std']:.{digits}f}"


def format_table(rows):
    """The comparison as a Markdown table (percentages; minutes per run)."""
    header = ["setting", "backbone values trained", *[METRICS[key] for key in
                                                      ("novel_miou_best", "novel_fb_iou_best",
                                                       "novel_miou_last", "base_miou_last")],
              "minutes per run", "paper mIoU (Pascal-5i)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * 7) + "|"]
    for row in rows:
        metrics = row["metrics"]
        backbone = row["trainable_values"]["backbone"]
        cells = [f"{row['label']} (`{row['name']}`)",
                 "?" if backbone is None else f"{backbone:,}",
                 *[format_number(metrics[key]) for key in
                   ("novel_miou_best", "novel_fb_iou_best", "novel_miou_last", "base_miou_last")],
                 format_number(metrics["seconds"], scale=1 / 60, digits=1),
                 f"{row['published_miou']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
