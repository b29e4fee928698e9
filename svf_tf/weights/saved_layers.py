"""The layers a Keras HDF5 weights file holds, by layer path, in either Keras layout.

Keras writes weights in two HDF5 layouts, and `model.load_weights` matches
neither by layer name:
- Keras 3 (`model.save_weights("x.weights.h5")`): one group per saved object,
  `layers/<class>_<n>/vars/0..k`, named after the layer's *class* and its
  rank among layers of that class (keras/src/saving/saving_lib.py,
  `_save_container_state`); the layer's own name is kept only as the `name`
  attribute of its `vars` group.
- Keras 2 (`.h5`, e.g. Keras' downloadable ImageNet `*_notop.h5` files): the
  root's `layer_names` attribute lists the layers, each group's
  `weight_names` attribute its arrays (loaded by order in
  keras/src/legacy/saving/legacy_h5_format.py).

`read_saved_layers` reads either into {layer path: arrays}, where the path
is the chain of layer names below the saved model ("block1_conv1", or
"vgg16_backbone/block1_conv1" for a backbone nested in a bigger model) -
the path `svf_tf.surgery.layer_paths.iter_layers` gives a model's layers -
and the arrays are in Keras' saving order (a layer's trainable variables,
then its non-trainable ones). Matching by these names, not by class rank,
lets a file of FrozenBatchNormalization layers load into
TorchBatchNormalization ones (same four variables) and makes every layer
that does not fit visible.
"""

import dataclasses
import os
import re
import tempfile

import h5py
import numpy as np

KERAS3 = "keras3"
LEGACY = "legacy"


@dataclasses.dataclass(frozen=True)
class SavedLayers:
    """The layers of a weights file.

    Attributes:
        layers: {layer path: [numpy arrays in Keras' saving order]}, only
            layers with at least one array.
        model_name: the name of the model that wrote the file, if recorded.
        layout: "keras3" or "legacy" (Keras 2 `.h5`).
        named: False for a Keras 3 file written before Keras recorded layer
            names; its layers are then keyed by their HDF5 group path
            ("layers/conv2d_3"), see `keyed_by_model_names`.
        group_paths: {layer path: HDF5 group path} (Keras 3 layout).
    """

    layers: dict
    model_name: str | None
    layout: str
    named: bool = True
    group_paths: dict = dataclasses.field(default_factory=dict)


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _array(dataset) -> np.ndarray:
    if dataset.attrs.get("dtype") == "bfloat16":  # as Keras' H5IOStore reads it
        import ml_dtypes
        return np.array(dataset, dtype=ml_dtypes.bfloat16)
    return np.array(dataset)


def _add(layers, path, arrays):
    """Adds `arrays` under `path`; a repeated path gets "#k" as in `iter_layers`."""
    key, count = path, 1
    while key in layers:
        key, count = f"{path}#{count}", count + 1
    layers[key] = arrays
    return key


def _natural(key):
    """Sort key: "conv2d_2" before "conv2d_10" (Keras numbers layers of a class in order)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _walk_keras3(group, chain, layers, group_paths):
    """Collects the arrays of every object group below `group` (Keras 3 layout).

    Returns:
        False if some object group has no recorded layer name.
    """
    named = True
    for key in sorted(group, key=_natural):
        child = group[key]
        if key == "vars" or not isinstance(child, h5py.Group):
            continue
        own = child.get("vars")
        if isinstance(own, h5py.Group):  # a saved object (layer): its name extends the path
            named &= "name" in own.attrs
            here = (*chain, _text(own.attrs.get("name", key)))
            if len(own):
                path = _add(layers, "/".join(here),
                            [_array(own[str(i)]) for i in range(len(own))])
                group_paths[path] = child.name.lstrip("/")
            named &= _walk_keras3(child, here, layers, group_paths)
        else:  # a container (a list of layers, an attribute): no name of its own
            named &= _walk_keras3(child, chain, layers, group_paths)
    return named


def _read_legacy(root, layers):
    """Collects the arrays of every layer of a Keras 2 `.h5` weights group."""
    for name in (_text(n) for n in root.attrs["layer_names"]):
        group = root[name]
        arrays = [_array(group[_text(w)]) for w in group.attrs.get("weight_names", [])]
        if arrays:
            _add(layers, name, arrays)


def read_saved_layers(path) -> SavedLayers:
    """Reads every layer's arrays of a `.weights.h5` (Keras 3) or `.h5` (Keras 2) file.

    Args:
        path: an HDF5 weights file.

    Returns:
        A `SavedLayers`.

    Raises:
        ValueError: the file cannot be read as HDF5 (truncated, damaged) or
            holds no Keras weights; one line naming the file.
    """
    layers = {}
    try:
        with h5py.File(path, "r") as file:
            root = file
            if "layer_names" not in root.attrs and "model_weights" in root:
                root = root["model_weights"]  # a whole Keras 2 model file
            if "layer_names" in root.attrs:
                _read_legacy(root, layers)
                return SavedLayers(layers, _text(root.attrs.get("model_name", "")) or None,
                                   LEGACY)
            if "vars" not in root and "layers" not in root:
                raise ValueError(
                    f"{path!r} holds no Keras weights (neither the 'layers' groups of "
                    "model.save_weights nor Keras 2's 'layer_names'); write weights files "
                    "with model.save_weights('name.weights.h5').")
            group_paths = {}
            named = _walk_keras3(root, (), layers, group_paths)
            name = root["vars"].attrs.get("name") if "vars" in root else None
            return SavedLayers(layers, _text(name) if name is not None else None, KERAS3,
                               named, group_paths)
    except (OSError, KeyError, RuntimeError) as error:  # h5py's errors on damaged files
        reason = " ".join(str(error).split())[:120]
        raise ValueError(
            f"{path!r} cannot be read as a Keras weights file ({reason}); a truncated "
            "download or copy?") from None


def keyed_by_model_names(saved: SavedLayers, model) -> SavedLayers:
    """A Keras 3 file without recorded layer names, re-keyed by the model's layer paths.

    Such a file names each layer only by its HDF5 group ("layers/conv2d_3":
    class and rank among layers of that class). Writing the model's own
    weights gives the group each of its layers saves to; a file layer takes
    the path of the model layer that saves to its group - the match Keras'
    `load_weights` makes. Groups the model has no layer for keep their group
    path (and are reported as unused).
    """
    with tempfile.TemporaryDirectory() as directory:
        own = os.path.join(directory, "model.weights.h5")
        model.save_weights(own)
        layer_of_group = {group: path for path, group in read_saved_layers(own).group_paths.items()}
    layers = {}
    for path, arrays in saved.layers.items():
        group = saved.group_paths.get(path, path)
        _add(layers, layer_of_group.get(group, group), arrays)
    return dataclasses.replace(saved, layers=layers, named=True, group_paths={})
