"""The curve figure of several runs: one line per run, points equal to the history."""

import matplotlib.image
import numpy as np

from svf_tf.analysis.run_curves import plot_run_curves, run_curve_row
from svf_tf.finetune_comparison.curves import figure_pixels

HISTORIES = {
    "full": [{"epoch": 1, "loss": 0.9, "base/miou": 0.2, "miou": 0.10},
             {"epoch": 2, "loss": 0.7, "base/miou": 0.5},
             {"epoch": 3, "loss": 0.5, "base/miou": 0.8, "miou": 0.05}],
    "svf": [{"epoch": 1, "loss": 0.9, "base/miou": 0.1, "miou": 0.12},
            {"epoch": 2, "loss": 0.8, "base/miou": 0.3, "miou": 0.20}],
    "train": [{"epoch": 1, "train/miou": 0.6, "base/miou": None, "miou": 0.2},
              {"epoch": 2, "train/miou": 0.7, "miou": 0.1}],
    "old": [{"epoch": 1, "loss": 1.0, "miou": 0.3}, {"epoch": 2, "loss": 0.9, "miou": 0.4}],
}


def test_one_line_per_run_with_the_history_points(tmp_path):
    rows = [run_curve_row(name, f"baseline {name}", history)
            for name, history in HISTORIES.items()]
    path = tmp_path / "curves.png"
    figure = plot_run_curves(rows, str(path))
    assert matplotlib.image.imread(str(path)).shape[:2] == figure_pixels()
    train, validation = figure.axes
    assert len(validation.get_lines()) == 4
    assert len(train.get_lines()) == 3  # "old" recorded no training mIoU
    assert [row["train_key"] for row in rows] == ["base/miou", "base/miou", "train/miou", None]
    expected_validation = {"full": ([1, 3], [10.0, 5.0]), "svf": ([1, 2], [12.0, 20.0]),
                           "train": ([1, 2], [20.0, 10.0]), "old": ([1, 2], [30.0, 40.0])}
    for line, name in zip(validation.get_lines(), HISTORIES, strict=True):
        assert line.get_label() == f"baseline {name} ({name})"
        np.testing.assert_array_equal(line.get_xdata(), expected_validation[name][0])
        np.testing.assert_allclose(line.get_ydata(), expected_validation[name][1])
    np.testing.assert_allclose(train.get_lines()[0].get_ydata(), [20.0, 50.0, 80.0])
    np.testing.assert_array_equal(train.get_lines()[1].get_xdata(), [1, 2])
    np.testing.assert_allclose(train.get_lines()[2].get_ydata(), [60.0, 70.0])


def test_runs_without_training_curves_get_the_novel_class_panel_only(tmp_path):
    rows = [run_curve_row("old", "baseline old", HISTORIES["old"])]
    path = tmp_path / "curves.png"
    figure = plot_run_curves(rows, str(path))
    assert matplotlib.image.imread(str(path)).shape[:2] == figure_pixels()
    (validation,) = figure.axes
    assert validation.get_title() == "mIoU on test episodes (novel classes)"
    np.testing.assert_allclose(validation.get_lines()[0].get_ydata(), [30.0, 40.0])
