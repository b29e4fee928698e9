"""The comparison's figure: per-epoch mIoU curves per setting (SVF paper Figures 2, 3 and 7).

Two panels share the colours, one colour per setting: the left panel is the
mIoU on few-shot episodes of the training (base) classes, the right one on
the test episodes of the novel classes, both against the epoch. Each line is
the mean over seeds, with a band of one standard deviation when there are
several. Over-fitting reads as a line that keeps rising on the left while it
stalls or falls on the right. Drawn with matplotlib's Agg canvas (no display,
no pyplot state) from the curves of `results.aggregate`, which results.json
stores, so the figure can be checked against its numbers. `--mode=analyze`
(`svf_tf.analysis.run_curves`) draws the same figure from the histories of
any runs; a curve without points (a run that did not score the base
classes) is left out of its panel, and a panel no run has points for is
left out of the figure (the novel-class panel is always drawn).
"""

from svf_tf.analysis.figure_style import DPI, colour, new_figure, save_png

#: Figure size in inches (at `figure_style.DPI`): the PNG is 1300 x 500 pixels.
FIGSIZE = (13.0, 5.0)
PANELS = (("train_base_miou", "training episodes (base classes)"),
          ("val_novel_miou", "test episodes (novel classes)"))


def figure_pixels():
    """(height, width) of the PNG `plot_curves` writes."""
    return round(FIGSIZE[1] * DPI), round(FIGSIZE[0] * DPI)


def _highest(rows):
    """The top of the highest curve (mean + std), in percent."""
    tops = [0.0]
    for row in rows:
        for curve in row["curves"].values():
            std = curve["std"] or [0.0] * len(curve["mean"])
            tops += [100 * (m + s) for m, s in zip(curve["mean"], std, strict=True)]
    return max(tops)


def plot_curves(rows, path, title=None):
    """Draws the two panels of the module docstring for `rows` into the PNG `path`.

    Args:
        rows: `results.aggregate` output (each row's `curves` and `label`).
        path: the PNG file, written whole or not at all.
        title: the figure's title (what was run, one short line).

    Returns:
        The matplotlib `Figure`: one axis per panel drawn (module docstring),
        each holding one line per row with points in it.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (one line with the fix).
    """
    figure = new_figure(*FIGSIZE)
    from matplotlib.ticker import MaxNLocator

    panels = [panel for panel in PANELS[:-1]
              if any(row["curves"][panel[0]]["epochs"] for row in rows)] + [PANELS[-1]]
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for index, row in enumerate(rows):
        for axis, (curve_name, _) in zip(axes, panels, strict=True):
            curve = row["curves"][curve_name]
            if not curve["epochs"]:
                continue
            mean = [100 * value for value in curve["mean"]]
            axis.plot(curve["epochs"], mean, color=colour(index), marker="o", markersize=3,
                      linestyle="--" if row["name"].startswith("svf") else "-",
                      label=f"{row['label']} ({row['name']})")
            if curve["std"] is not None:
                low = [m - 100 * s for m, s in zip(mean, curve["std"], strict=True)]
                high = [m + 100 * s for m, s in zip(mean, curve["std"], strict=True)]
                axis.fill_between(curve["epochs"], low, high, color=colour(index), alpha=0.12,
                                  linewidth=0)
    for axis, (_, name) in zip(axes, panels, strict=True):
        axis.set_title(f"mIoU on {name}")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    axes[0].set_ylim(0, max(1.0, 1.08 * _highest(rows)))  # shared by both panels
    axes[0].set_ylabel("mIoU (%)")
    figure.legend(*axes[-1].get_legend_handles_labels(), loc="outside lower center",
                  ncols=min(5, max(1, len(rows))), fontsize="small")
    if title:
        figure.suptitle(title, fontsize="medium")
    save_png(figure, path)
    return figure
