"""mIoU curves of several runs on one figure (SVF paper Figs. 2, 3 and 7).

Per run, from its history.json (one record per epoch, `svf_tf.runs.trainer`):
the validation mIoU on the novel classes (`miou`, the epochs that were
validated) and the mIoU on the training (base) classes: `base/miou` where
the run recorded it (fixed base-class test episodes,
`svf_tf.tasks.base_class_tracking.BaseClassTrackingTask`, the runs of
scripts/replicate_finetuning.py), otherwise `train/miou` (the epoch's own
training episodes, `FewShotTask.train_metrics`); each row of curves.json
names the key it took. A run that recorded neither has no line in the left
panel. The figure is `svf_tf.finetune_comparison.curves.plot_curves`': one
colour per run, the same in both panels.
"""

import os

from svf_tf.finetune_comparison.curves import plot_curves
from svf_tf.runs.run_files import read_json
from svf_tf.tasks.base_class_tracking import BASE_MIOU
from svf_tf.tasks.few_shot import TRAIN_MIOU

#: The training-class keys in order of preference (module docstring).
TRAIN_KEYS = (BASE_MIOU, TRAIN_MIOU)


def read_history(run_dir):
    """The run's per-epoch records; a one-line FileNotFoundError when it has none."""
    path = os.path.join(run_dir, "history.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} has no history.json: it finished no epoch.")
    return read_json(path)


def _curve(history, key):
    points = [(record["epoch"], float(record[key])) for record in history
              if record.get(key) is not None]
    return {"epochs": [epoch for epoch, _ in points], "mean": [value for _, value in points],
            "std": None}


def run_curve_row(name, label, history):
    """One row of `plot_curves` (and of the JSON): each curve's epochs and values.

    `train_key` is the history key of the training curve (None: none recorded).
    """
    train_key = next((key for key in TRAIN_KEYS
                      if any(record.get(key) is not None for record in history)), None)
    curves = {"train_base_miou": _curve(history, train_key) if train_key else _curve([], None),
              "val_novel_miou": _curve(history, "miou")}
    return {"name": name, "label": label, "train_key": train_key, "curves": curves}


def plot_run_curves(rows, path, title="mIoU per epoch"):
    """Draws the rows (`run_curve_row`) into the PNG `path`; returns the `Figure`."""
    return plot_curves(rows, path, title=title)
