"""mIoU curves of several runs on one figure (SVF paper Figs. 2, 3 and 7).

Per run, from its history.json (one record per epoch, `svf_tf.runs.trainer`):
the validation mIoU on the novel classes (`miou`, the epochs that were
validated) and the training-class mIoU on base-class episodes (`base/miou`,
recorded by `svf_tf.tasks.base_class_tracking.BaseClassTrackingTask`, i.e.
the runs of scripts/replicate_finetuning.py). A run without base-class
scores has no line in the left panel (one line says so). The figure is
`svf_tf.finetune_comparison.curves.plot_curves`': one colour per run, the
same in both panels.
"""

import os

from svf_tf.finetune_comparison.curves import plot_curves
from svf_tf.runs.run_files import read_json
from svf_tf.tasks.base_class_tracking import BASE_MIOU

#: epoch-record key -> curve name of `plot_curves`' panels.
CURVE_KEYS = {BASE_MIOU: "train_base_miou", "miou": "val_novel_miou"}


def read_history(run_dir):
    """The run's per-epoch records; a one-line FileNotFoundError when it has none."""
    path = os.path.join(run_dir, "history.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} has no history.json: it finished no epoch.")
    return read_json(path)


def run_curve_row(name, label, history):
    """One row of `plot_curves` (and of the JSON): each curve's epochs and values."""
    curves = {}
    for key, curve in CURVE_KEYS.items():
        points = [(record["epoch"], float(record[key])) for record in history
                  if record.get(key) is not None]
        curves[curve] = {"epochs": [epoch for epoch, _ in points],
                         "mean": [value for _, value in points], "std": None}
    return {"name": name, "label": label, "curves": curves}


def plot_run_curves(rows, path, title="mIoU per epoch"):
    """Draws the rows (`run_curve_row`) into the PNG `path`; returns the `Figure`."""
    return plot_curves(rows, path, title=title)
