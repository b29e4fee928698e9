"""The replication's figure: per backbone, each seed's prior mIoU and meta-trained mIoU.

Two panels share the x axis, the four backbones of the BCPT comparison
(random, the start, Standard, BCPT pre-training): on the left the
non-parametric prior's mIoU (BCPT paper Table 2), on the right the frozen
meta-training's best mIoU (Table 1). One marker per seed (one colour per
seed, the same in both panels) and a bar for the mean over seeds, so the
spread between seeds reads next to the gaps between backbones. Drawn from
the runs `scripts/replicate_bcpt.py` stores in results.json.
"""

from svf_tf.analysis.figure_style import colour, new_figure, save_png
from svf_tf.bcpt.replication import BACKBONES

#: Figure size in inches: the PNG is 1100 x 450 pixels.
FIGSIZE = (11.0, 4.5)
#: (stage, number, panel title) of each panel.
PANELS = (("prior", "miou", "prior mask mIoU (no head; Table 2)"),
          ("meta", "best_miou", "frozen meta-training mIoU, best (Table 1)"))
SHORT = {"random": "random", "start": "start", "standard": "Standard", "bcpt": "BCPT"}


def plot_results(runs, path):
    """Draws the two panels for `runs` (results.json's list) into the PNG `path`.

    Returns:
        The matplotlib `Figure`; each axis holds one point collection per seed.
    """
    figure = new_figure(*FIGSIZE)
    axes = figure.subplots(1, len(PANELS), sharey=True)
    seeds = sorted({run["seed"] for run in runs})
    for axis, (stage, key, title) in zip(axes, PANELS, strict=True):
        values = {backbone: {} for backbone in BACKBONES}
        for run in runs:
            value = run["numbers"].get(key) if run["stage"] == stage else None
            if run["backbone"] in values and value is not None:
                values[run["backbone"]][run["seed"]] = 100 * value
        for x, backbone in enumerate(BACKBONES):
            found = list(values[backbone].values())
            if found:
                axis.bar(x, sum(found) / len(found), width=0.6, color="#DDDDDD",
                         edgecolor="#999999", label="mean over the seeds" if x == 0 else None)
        for index, seed in enumerate(seeds):
            points = [(x + 0.12 * (index - (len(seeds) - 1) / 2), values[b][seed])
                      for x, b in enumerate(BACKBONES) if seed in values[b]]
            if points:
                axis.scatter(*zip(*points, strict=True), color=colour(index), zorder=3,
                             label=f"seed {seed}")
        axis.set_xticks(range(len(BACKBONES)), [SHORT[b] for b in BACKBONES])
        axis.set_title(title, fontsize="medium")
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mIoU (%), novel classes")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=len(handles),
                      fontsize="small")
    save_png(figure, path)
    return figure
