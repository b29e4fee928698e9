"""U-subspace cue maps: where on an image the most grown and most shrunk directions respond.

SVF writes a layer's folded kernel as V diag(S) U^T (`svf_tf.layers.svf_factorization`):
at each output position p the layer computes y(p) = U diag(S) V^T x(p) + b
from its input patch x(p). Direction k of the U subspace is the column
u_k; its cue at p is the component of the layer's output along it,

    c_k(p) = u_k . (y(p) - b) = S_k * (v_k . x(p))

(the second form holds because U's columns are orthonormal, which they stay
when only S trains). The map drawn is |c_k| over the layer's output grid,
resized bilinearly to the image and divided by its largest value on that
image (so each panel spans 0..1; the absolute value because an SVD may flip
the sign of a pair (u_k, v_k)). It is computed with the trained model, on
the layer's raw output (before BatchNorm and ReLU). The directions are the
singular values among the layer's initial top 30 with the largest growth
and the largest reduction (S - S0), as in the SVF paper's Figures 5 and 6:
(a) reduction, (b) growth.
"""

import numpy as np

from svf_tf.analysis.figure_style import HEAT_MAP, new_figure, save_png
from svf_tf.analysis.singular_value_figures import short_name


def direction_responses(outputs, u, bias, directions):
    """c_k of the module docstring: [N, h, w, len(directions)] from layer outputs [N, h, w, C].

    Args:
        outputs: the layer's outputs (bias included).
        u: its U factor, [C, R].
        bias: its bias [C] or None.
        directions: indices k into U's columns.
    """
    outputs = np.asarray(outputs, np.float64)
    if bias is not None:
        outputs = outputs - np.asarray(bias, np.float64)
    return outputs @ np.asarray(u, np.float64)[:, list(directions)]


def normalized_maps(responses, size):
    """|responses| [N, h, w, D] resized to `size` (H, W), each map divided by its maximum."""
    import tensorflow as tf

    magnitude = np.abs(np.asarray(responses, np.float32))
    resized = tf.image.resize(magnitude, size, method="bilinear").numpy()
    peak = resized.max(axis=(1, 2), keepdims=True)
    return resized / np.maximum(peak, 1e-12)


def layer_output_model(model, path):
    """A Keras model from an image to the output of the SVF layer at `path` in `model`.

    The layer's own graph (the backbone it was built in) is reached from the
    image input of a functional sub-model: the parent named by the path, or
    another one sharing the backbone's graph (a backbone split at layer3
    keeps layer4 in a model that takes features, not images).

    Raises:
        ValueError: no functional part of `model` maps an image to the layer.
    """
    import keras

    from svf_tf.surgery.layer_paths import is_graph_model, iter_layers

    parent = model
    for part in path.split("/")[:-1]:
        parent = parent.get_layer(part.split("#")[0])
    layer = parent.get_layer(path.rsplit("/", 1)[-1].split("#")[0])
    candidates = [parent, model, *(sub for _, sub in iter_layers(model) if is_graph_model(sub))]
    for candidate in candidates:
        inputs = getattr(candidate, "inputs", None) or []
        if len(inputs) != 1 or inputs[0].shape[-1] != 3:
            continue
        try:
            return keras.Model(inputs, layer.output)
        except ValueError:  # not connected to this input
            continue
    raise ValueError(f"Cannot compute the output of layer '{path}' from an image input of "
                     "the model; draw the cue maps of another layer (--analysis_layers).")


def compute_cue_maps(model, info, images, directions):
    """(c_k at the layer's resolution [N, h, w, D], normalised maps [N, H, W, D]).

    Args:
        model: the trained model; info: the layer's `SVFLayerInfo`.
        images: normalised images [N, H, W, 3], as the backbone takes them.
        directions: the U columns k to draw.
    """
    layer = info.layer
    outputs = layer_output_model(model, info.path).predict(np.asarray(images), verbose=0)
    bias = np.asarray(layer.bias) if getattr(layer, "use_bias", False) else None
    responses = direction_responses(outputs, np.asarray(layer.svf_u), bias, directions)
    return responses, normalized_maps(responses, np.asarray(images).shape[1:3])


def plot_cue_maps(pictures, maps, labels, title, path):
    """Rows of images: the image, then each direction's map over it.

    Args:
        pictures: display images [N, H, W, 3] in 0..1.
        maps: normalised maps [N, H, W, D].
        labels: a column title per direction.
        title: the figure's title.
        path: the PNG.

    Returns:
        The `Figure`.
    """
    count, columns = len(pictures), 1 + maps.shape[-1]
    figure = new_figure(2.4 * columns + 0.8, 2.4 * count + 0.6)
    axes = figure.subplots(count, columns, squeeze=False)
    image_artist = None
    for row in range(count):
        axes[row, 0].imshow(pictures[row])
        axes[row, 0].set_ylabel(f"image {row + 1}")
        for column in range(maps.shape[-1]):
            axis = axes[row, column + 1]
            axis.imshow(pictures[row].mean(axis=-1), cmap="gray", vmin=0, vmax=1)
            image_artist = axis.imshow(maps[row, ..., column], cmap=HEAT_MAP, vmin=0, vmax=1,
                                       alpha=0.65)
    for column, label in enumerate(["image", *labels]):
        axes[0, column].set_title(label, fontsize="small")
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(image_artist, ax=axes[:, -1].tolist(), shrink=0.8,
                    label="|response| / its maximum")
    figure.suptitle(title, fontsize="medium")
    save_png(figure, path)
    return figure


def direction_labels(record, growth, reduction):
    """Column titles: (a) reduction then (b) growth, with S0 -> S."""
    position = {index: i for i, index in enumerate(record["index"])}

    def label(letter, what, k):
        i = position[k]
        return (f"({letter}) {what}: u_{k}\nS {record['initial'][i]:.4g} -> "
                f"{record['final'][i]:.4g} ({100 * record['relative_change'][i]:+.3g}%)")

    # When every value shrank (or none did), say so rather than call it growth (reduction).
    grew = record["change"][position[growth]] > 0
    shrank = record["change"][position[reduction]] < 0
    return [label("a", "largest reduction" if shrank else "no value shrank; least grown",
                  reduction),
            label("b", "largest growth" if grew else "no value grew; least reduced", growth)]


def cue_title(record):
    return f"U-subspace cues of {short_name(record['path'])} (|u_k . (y - b)|)"
