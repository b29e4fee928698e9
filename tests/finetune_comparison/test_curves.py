"""The figure: a readable PNG of the stated size, one line per setting in each panel."""

import matplotlib.image
import numpy as np

from svf_tf.finetune_comparison.curves import PANELS, figure_pixels, plot_curves


def row(name, train, val, std=None):
    epochs = list(range(1, len(train) + 1))
    return {"name": name, "label": name.replace("_", " "),
            "curves": {"train_base_miou": {"epochs": epochs, "mean": train, "std": std},
                       "val_novel_miou": {"epochs": epochs, "mean": val, "std": std}}}


def test_png_has_one_line_per_setting_drawn_from_the_curves(tmp_path):
    rows = [row("freeze", [0.1, 0.2, 0.3], [0.10, 0.15, 0.2], std=[0.01, 0.02, 0.03]),
            row("full", [0.2, 0.5, 0.8], [0.10, 0.08, 0.05]),
            row("svf_234", [0.1, 0.3, 0.4], [0.12, 0.2, 0.25])]
    path = tmp_path / "curves.png"
    figure = plot_curves(rows, str(path), title="test")
    image = matplotlib.image.imread(str(path))
    assert image.shape[:2] == figure_pixels() == (500, 1300)
    assert image.std() > 0  # something is drawn
    left, right = figure.axes
    for axis, (curve_name, _) in zip((left, right), PANELS, strict=True):
        lines = axis.get_lines()
        assert [line.get_label() for line in lines] == [
            "freeze (freeze)", "full (full)", "svf 234 (svf_234)"]
        for line, data in zip(lines, rows, strict=True):
            np.testing.assert_allclose(line.get_ydata(),
                                       100 * np.asarray(data["curves"][curve_name]["mean"]))
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    assert not list(tmp_path.glob(".*"))  # no temporary left behind
