"""What every analysis figure shares: the Agg canvas, a colour-blind-safe palette, saving.

The palette is Okabe and Ito's (Color Universal Design, 2008): its colours
stay distinct under the common colour-vision deficiencies. Figures are
`matplotlib.figure.Figure` objects drawn on the Agg canvas (no display, no
pyplot state) and written whole or not at all (`svf_tf.atomic_files`).
"""

import io

from svf_tf.atomic_files import write_file_atomically

#: Okabe-Ito: blue, orange, bluish green, vermillion, reddish purple, sky blue, yellow, black.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
#: Growth and reduction of a singular value (blue / vermillion; the paper's two panels).
GROWTH, REDUCTION = "#0072B2", "#D55E00"
#: The heat maps' colour map: perceptually uniform and readable without colour vision.
HEAT_MAP = "viridis"
DPI = 100


def colour(index):
    """The `index`-th colour of `PALETTE` (cycling)."""
    return PALETTE[index % len(PALETTE)]


def new_figure(width, height):
    """An Agg `Figure` of `width` x `height` inches at `DPI`, laid out by matplotlib.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (one line with the fix).
    """
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ModuleNotFoundError("The figures need matplotlib, which is not installed: "
                                  "pip install -r requirements.txt.") from None
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(figure, path):
    """Writes `figure` as a PNG at `DPI` to `path` (whole or not at all); returns `path`."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    write_file_atomically(path, buffer.getvalue())
    return path


def pixels(figure):
    """(height, width) in pixels of the PNG `save_png` writes for `figure`."""
    width, height = figure.get_size_inches()
    return round(height * DPI), round(width * DPI)
