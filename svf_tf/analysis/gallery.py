"""Prediction gallery: the same test episodes segmented by several runs, with each IoU.

A row per episode: the (first) support image with its mask, the query, its
ground truth, then each run's prediction titled with the episode's
foreground IoU. Predictions are scored as the test protocol scores them
(`svf_tf.metrics.evaluation`): logits resized with align_corners to the
original-resolution label, argmax, 255 pixels ignored; the episode's IoU is
|prediction AND truth| / |prediction OR truth| over the foreground.
"""

import numpy as np

from svf_tf.analysis.figure_style import colour, new_figure, save_png

#: Mask colours: background near-black, foreground orange, ignored (255) grey.
_MASK_COLOURS = ("#222222", colour(1), "#9E9E9E")


def episode_iou(prediction, truth, ignore_label=255):
    """(IoU, intersection, union) of the foreground of two label maps, `ignore_label` left out."""
    valid = truth != ignore_label
    predicted, actual = (prediction == 1) & valid, (truth == 1) & valid
    intersection = int(np.sum(predicted & actual))
    union = int(np.sum(predicted | actual))
    return (intersection / union if union else 1.0), intersection, union


def predicted_labels(logits, original_mask):
    """Argmax of `logits` [1, S, S, 2] resized (align_corners) to `original_mask` [1, L, L]."""
    from svf_tf.ops.align_corners_resize import resize_align_corners

    size = np.asarray(original_mask).shape[1:3]
    resized = resize_align_corners(np.asarray(logits, np.float32), size)
    return np.argmax(np.asarray(resized)[0], axis=-1)


def _mask_image(mask):
    """A label map (0, 1, 255) as an RGB image in `_MASK_COLOURS`."""
    from matplotlib.colors import to_rgb

    table = np.zeros((256, 3))
    table[0], table[1], table[255] = (to_rgb(c) for c in _MASK_COLOURS)
    return table[np.asarray(mask, np.int64).clip(0, 255)]


def _overlay(picture, mask):
    """`picture` (0..1 RGB) with the mask's foreground tinted orange."""
    from matplotlib.colors import to_rgb

    tinted = picture.copy()
    foreground = np.asarray(mask) == 1
    tinted[foreground] = 0.45 * tinted[foreground] + 0.55 * np.asarray(to_rgb(colour(1)))
    return tinted


def plot_gallery(episodes, run_labels, path):
    """Draws the rows of the module docstring.

    Args:
        episodes: dicts with "support" and "query" (0..1 RGB), "support_mask",
            "truth" and "predictions" (one label map per run), "ious" (one per run).
        run_labels: one column title per run.
        path: the PNG.

    Returns:
        The `Figure`.
    """
    columns = 3 + len(run_labels)
    figure = new_figure(2.2 * columns, 2.3 * len(episodes) + 0.5)
    axes = figure.subplots(len(episodes), columns, squeeze=False)
    titles = ["support + mask", "query", "ground truth", *run_labels]
    for row, episode in enumerate(episodes):
        panels = [_overlay(episode["support"], episode["support_mask"]), episode["query"],
                  _mask_image(episode["truth"]),
                  *[_mask_image(p) for p in episode["predictions"]]]
        for column, panel in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(panel)
            axis.set_xticks([])
            axis.set_yticks([])
            if column >= 3:
                axis.set_xlabel(f"IoU {100 * episode['ious'][column - 3]:.1f}%")
        axes[row, 0].set_ylabel(f"episode {episode['index']}")
    for column, title in enumerate(titles):
        axes[0, column].set_title(title, fontsize="small")
    figure.suptitle("predictions on the same test episodes (orange: foreground, grey: "
                    "ignored)", fontsize="medium")
    save_png(figure, path)
    return figure
