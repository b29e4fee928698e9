"""The singular-value figures: one layer (Fig. 4), a stage's grid (Figs. 8-11), an overview.

Each takes the records of `svf_tf.analysis.singular_value_change` (the JSON
written next to the PNG), never the model, so a figure can be checked
against its numbers. Growth is blue and reduction vermillion (Okabe-Ito).
"""

import math

import numpy as np

from svf_tf.analysis.figure_style import GROWTH, REDUCTION, colour, new_figure, save_png


def short_name(path):
    """The last part of a layer path, as the axes label layers."""
    return path.rsplit("/", 1)[-1]


def _change_bars(axis, record):
    change = np.asarray(record["change"])
    positions = np.arange(1, change.size + 1)
    axis.bar(positions, change, color=[GROWTH if c >= 0 else REDUCTION for c in change])
    axis.axhline(0.0, color="black", linewidth=0.6)
    axis.set_xlim(0.3, change.size + 0.7)
    axis.grid(axis="y", alpha=0.3)


def plot_layer_change(record, path):
    """Two panels over the initial top-k singular values of one layer, by initial rank.

    Top: the initial values (bars) and the trained ones (dots). Bottom: the
    change S - S0 (blue growth, vermillion reduction). Returns the `Figure`.
    """
    figure = new_figure(8.0, 5.0)
    top, bottom = figure.subplots(2, 1, sharex=True)
    positions = np.arange(1, len(record["initial"]) + 1)
    top.bar(positions, record["initial"], color="#BBBBBB", label="initial (pre-trained)")
    top.plot(positions, record["final"], linestyle="none", marker="o", markersize=4,
             color="black", label="after fine-tuning")
    top.set_ylabel("singular value")
    top.legend(fontsize="small")
    top.grid(axis="y", alpha=0.3)
    _change_bars(bottom, record)
    bottom.set_ylabel("change (after - initial)")
    bottom.set_xlabel(f"initial rank (top {len(record['initial'])} of {record['rank']})")
    figure.suptitle(f"singular values of {short_name(record['path'])} "
                    f"({record['kind']}, layer{record['stage']})", fontsize="medium")
    save_png(figure, path)
    return figure


def plot_stage_grid(records, title, path):
    """One change panel per layer of `records` (a stage's 3x3 or 1x1 convs), shared y axis.

    Returns the `Figure` (one axes per record, then empty ones hidden).
    """
    columns = min(3, len(records))
    rows = math.ceil(len(records) / columns)
    figure = new_figure(4.0 * columns, 2.6 * rows + 0.6)
    axes = np.atleast_1d(figure.subplots(rows, columns, sharey=True, squeeze=False)).ravel()
    for axis, record in zip(axes, records, strict=False):
        _change_bars(axis, record)
        axis.set_title(short_name(record["path"]), fontsize="small")
        axis.set_xlabel("initial rank")
        axis.set_ylabel("change")
    for axis in axes[len(records):]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize="medium")
    save_png(figure, path)
    return figure


def plot_overview(records, path):
    """Mean |relative change| of all singular values per SVF layer (bars), max as dots.

    Layers in graph order, coloured by stage. Returns the `Figure`.
    """
    figure = new_figure(max(8.0, 0.18 * len(records) + 2.0), 4.5)
    axis = figure.subplots()
    positions = np.arange(len(records))
    stages = [record["stage"] for record in records]
    axis.bar(positions, [100 * r["mean_abs_relative_change"] for r in records],
             color=[colour(0 if s is None else s) for s in stages])
    axis.plot(positions, [100 * r["max_abs_relative_change"] for r in records],
              linestyle="none", marker="v", markersize=3, color="black",
              label="largest |relative change|")
    from matplotlib.patches import Patch

    handles = [Patch(color=colour(stage), label=f"layer{stage}: mean |relative change|")
               for stage in sorted({s for s in stages if s is not None})]
    axis.set_xticks(positions, [short_name(r["path"]) for r in records], rotation=90,
                    fontsize=6)
    axis.set_xlim(-0.7, len(records) - 0.3)
    axis.set_ylabel("|relative change| of S (%)")
    axis.set_xlabel("SVF layer (backbone order)")
    axis.set_ylim(bottom=0)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(handles=[*axis.get_legend_handles_labels()[0], *handles], fontsize="small")
    axis.set_title("how much fine-tuning changed each layer's singular values",
                   fontsize="medium")
    save_png(figure, path)
    return figure
