"""`WeightsLoadReport`: which layers a weights file set in a model, and which it did not.

Three lists, so nothing of a weights file is dropped silently (the
counterpart of the converter's `svf_tf.torch_import.ConversionReport`):
- loaded: the model's layers the file set, every variable;
- missing: the model's layers the file did not set (absent from the file, or
  saved with other variables or shapes), with why; they keep their values;
- unexpected: the file's layers with no layer of that path in the model.

`match_saved_layers` computes it, and the assignments that would load what
fits, without assigning anything (`svf_tf.weights.pretrained.load_weights_file`
decides whether to assign). Layers match by path, the chain of layer names; a
Keras 2 file none of whose names match is matched by order, as Keras loads
such files, if every layer fits so.
"""

import dataclasses

from svf_tf.surgery.layer_paths import iter_layers
from svf_tf.weights.saved_layers import LEGACY

NOT_IN_FILE = "not in the file"


@dataclasses.dataclass(frozen=True)
class LayerProblem:
    """A layer (of the model or of the file) that was not loaded, and why."""

    layer: str
    reason: str


@dataclasses.dataclass
class WeightsLoadReport:
    """What loading one weights file into one model did.

    Attributes:
        source: the weights file.
        model_name: name of the Keras model loaded into.
        saved_from: name of the model that wrote the file, if recorded.
        loaded: paths of the model's layers the file set ("block1_conv1",
            "vgg16_backbone/block1_bn1").
        loaded_variables: how many variables those layers hold.
        missing: `LayerProblem`s of the model's layers left unset.
        unexpected: `LayerProblem`s of the file's layers that have no place.
        by_order: True when the layers were matched by their order, not their
            names (a Keras 2 file whose layer names differ from the model's,
            loaded as Keras itself loads those files).
    """

    source: str
    model_name: str
    saved_from: str | None = None
    loaded: list = dataclasses.field(default_factory=list)
    loaded_variables: int = 0
    missing: list = dataclasses.field(default_factory=list)
    unexpected: list = dataclasses.field(default_factory=list)
    by_order: bool = False

    @property
    def complete(self) -> bool:
        """Every layer of the model set, and every layer of the file used."""
        return not self.missing and not self.unexpected

    def summary(self) -> str:
        """One line: the counts."""
        order = " by order (the file's layer names differ)" if self.by_order else ""
        loaded = f"{_layers(len(self.loaded))} loaded{order}"
        return (f"{loaded} ({self.loaded_variables} variables); "
                f"{_layers(len(self.missing))} of the model not set; "
                f"{_layers(len(self.unexpected))} of the file unused")

    def problems(self, names: int = 3) -> str:
        """The layers that did not load, short: counts and the first `names` of each kind.

        Example: "13 layers of the file unused (block1_bn1, block1_bn2,
        block2_bn1, ... 10 more)". The first layer of the model that the file
        has with other shapes also says how they differ. Empty when
        `complete`.
        """
        if self.missing and self.unexpected:
            names = max(1, names - 1)
        parts = []
        if self.missing:
            parts.append(f"{_layers(len(self.missing))} of the model not set "
                         f"({_first(self.missing, names, with_reason=True)})")
        if self.unexpected:
            parts.append(f"{_layers(len(self.unexpected))} of the file unused "
                         f"({_first(self.unexpected, names)})")
        return " and ".join(parts)

    def __str__(self) -> str:
        saved_from = f" (saved from '{self.saved_from}')" if self.saved_from else ""
        lines = [f"weights {self.source}{saved_from} -> '{self.model_name}'", self.summary()]
        for title, entries in (("MODEL LAYERS NOT SET", self.missing),
                               ("FILE LAYERS UNUSED", self.unexpected)):
            if entries:
                width = max(len(entry.layer) for entry in entries)
                lines += ["", f"{title} ({len(entries)})"]
                lines += [f"  {entry.layer.ljust(width)}  {entry.reason}" for entry in entries]
        if self.loaded:
            lines += ["", f"LOADED ({len(self.loaded)})", *(f"  {path}" for path in self.loaded)]
        return "\n".join(lines)


def _layers(count):
    return f"{count} layer" if count == 1 else f"{count} layers"


def _first(entries, count, with_reason=False):
    """The first `count` layer names, "... k more"; the first one's reason if it is a misfit."""
    shown = [entry.layer for entry in entries[:count]]
    if with_reason and entries[0].reason != NOT_IN_FILE:
        shown[0] += f": {entries[0].reason}"
    rest = len(entries) - count
    return ", ".join(shown) + (f", ... {rest} more" if rest > 0 else "")


def _shape(value) -> tuple:
    return tuple(int(size) for size in value.shape)


def _why_not(variables, arrays):
    """Why `arrays` (from the file) cannot set `variables` (of a layer), or None."""
    if len(arrays) != len(variables):
        names = ", ".join(v.name for v in variables)
        return f"the file has {len(arrays)} arrays for it, the layer {len(variables)} ({names})"
    for variable, array in zip(variables, arrays, strict=True):
        if _shape(variable) != _shape(array):
            return (f"{variable.name} is {_shape(variable)} here, {_shape(array)} in the file")
    return None


def model_layer_variables(model):
    """[(path, layer, variables)] of every layer of `model` that saves variables.

    The variables are what the layer writes to a weights file, in that order
    (`layer.save_own_variables`, which SVF layers override).
    """
    result = []
    for path, layer in iter_layers(model):
        store = {}
        layer.save_own_variables(store)
        if store:
            result.append((path, layer, [store[str(i)] for i in range(len(store))]))
    return result


def _match(model_layers, saved_layers):
    """[(model path, layer, arrays or None, reason or None)] pairing layers by path."""
    pairs = []
    for path, layer, variables in model_layers:
        arrays = saved_layers.get(path)
        reason = NOT_IN_FILE if arrays is None else _why_not(variables, arrays)
        pairs.append((path, layer, variables, arrays, reason))
    return pairs


def _match_by_order(model_layers, saved_layers):
    """The same pairs by position, if every layer fits that way; else None.

    Keras loads a Keras 2 `.h5` file by the order of its layers, whatever
    their names (keras/src/legacy/saving/legacy_h5_format.py,
    `load_weights_from_hdf5_group`); files written under older layer names
    load only so.
    """
    if len(model_layers) != len(saved_layers):
        return None
    pairs = []
    for (path, layer, variables), arrays in zip(model_layers, saved_layers.values(),
                                                strict=True):
        if _why_not(variables, arrays):
            return None
        pairs.append((path, layer, variables, arrays, None))
    return pairs


def match_saved_layers(model, saved, source):
    """Matches the layers of a weights file to the layers of a model, by path.

    Args:
        model: the Keras model to load into.
        saved: a `svf_tf.weights.saved_layers.SavedLayers`.
        source: the file's path, for the report.

    Returns:
        (report, assignments): a `WeightsLoadReport`, and [(layer, arrays)]
        for the layers that fit, to be given to `layer.load_own_variables`.
        Nothing is assigned here.
    """
    report = WeightsLoadReport(source, model.name, saved.model_name)
    model_layers = model_layer_variables(model)
    pairs = _match(model_layers, saved.layers)
    if saved.layout == LEGACY and not any(reason is None for *_, reason in pairs):
        by_order = _match_by_order(model_layers, saved.layers)
        if by_order:
            pairs, report.by_order = by_order, True
    remaining = {} if report.by_order else dict(saved.layers)
    assignments = []
    for path, layer, variables, arrays, reason in pairs:
        remaining.pop(path, None)
        if reason:
            report.missing.append(LayerProblem(path, reason))
        else:
            report.loaded.append(path)
            report.loaded_variables += len(variables)
            assignments.append((layer, arrays))
    report.unexpected = [
        LayerProblem(path, f"{len(arrays)} arrays: " + ", ".join(
            str(_shape(array)) for array in arrays[:4]) + (", ..." if len(arrays) > 4 else ""))
        for path, arrays in remaining.items()]
    return report, assignments
