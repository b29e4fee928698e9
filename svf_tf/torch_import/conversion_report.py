"""`ConversionReport`: every tensor of a checkpoint, and where it went.

Four lists, so nothing is converted silently:
- loaded: PyTorch key and shape, the layout conversion, Keras variable and shape;
- skipped: tensors with no Keras counterpart on purpose (ImageNet
  classifiers, BatchNorm update counters, aliases of another key), with why;
- unplaced: tensors the conversion could not place (an unknown key, or a key
  whose Keras variable this model does not have), with why;
- unset: Keras variables the checkpoint did not provide (they keep their
  initial values).
`str(report)` is a readable table; `report.complete` is True when nothing
is unplaced or unset.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class LoadedTensor:
    """One PyTorch tensor assigned to one Keras variable."""

    torch_key: str
    torch_shape: tuple
    layout: str
    keras_path: str
    keras_shape: tuple


@dataclasses.dataclass(frozen=True)
class OmittedTensor:
    """A PyTorch tensor that was not assigned (skipped or unplaced), and why."""

    torch_key: str
    torch_shape: tuple
    reason: str


@dataclasses.dataclass(frozen=True)
class UnsetVariable:
    """A Keras variable no tensor was assigned to."""

    keras_path: str
    keras_shape: tuple


def _table(header, rows):
    """Left-aligned columns, two spaces apart, under a header line."""
    rows = [tuple(str(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        return "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                        strict=True)).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *map(line, rows)]


@dataclasses.dataclass
class ConversionReport:
    """What `convert_state_dict` did with each tensor.

    Attributes:
        target: the conversion target ("resnet50_deep_stem", "bam", ...).
        model_name: name of the Keras model written to.
        source: the checkpoint path, if known.
        loaded, skipped, unplaced, unset: see the module docstring.
        notes: other facts worth seeing (ignored checkpoint entries such as
            "optimizer", a stripped `module.` prefix, merged SVF factors).
    """

    target: str
    model_name: str
    source: str | None = None
    loaded: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    unplaced: list = dataclasses.field(default_factory=list)
    unset: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every tensor placed or deliberately skipped, and every Keras variable set."""
        return not self.unplaced and not self.unset

    def summary(self) -> str:
        """One line: the counts."""
        return (f"{self.target}: {len(self.loaded)} loaded, {len(self.skipped)} skipped, "
                f"{len(self.unplaced)} unplaced; {len(self.unset)} Keras variables not set")

    def problems(self) -> str:
        """The unplaced tensors and unset variables, one per line ('' if complete)."""
        lines = [f"unplaced {t.torch_key} {t.torch_shape}: {t.reason}" for t in self.unplaced]
        lines += [f"not set by the checkpoint: Keras variable {v.keras_path} {v.keras_shape}"
                  for v in self.unset]
        return "\n".join(lines)

    def __str__(self) -> str:
        source = f" from {self.source}" if self.source else ""
        lines = [f"PyTorch -> Keras conversion{source} into '{self.model_name}'",
                 self.summary()]
        lines += [f"note: {note}" for note in self.notes]
        if self.loaded:
            lines += ["", f"LOADED ({len(self.loaded)})"]
            lines += _table(("PyTorch key", "PyTorch shape", "layout", "Keras variable",
                             "Keras shape"),
                            [(t.torch_key, t.torch_shape, t.layout, t.keras_path, t.keras_shape)
                             for t in self.loaded])
        for title, entries in (("SKIPPED", self.skipped), ("UNPLACED", self.unplaced)):
            if entries:
                lines += ["", f"{title} ({len(entries)})"]
                lines += _table(("PyTorch key", "PyTorch shape", "reason"),
                                [(t.torch_key, t.torch_shape, t.reason) for t in entries])
        if self.unset:
            lines += ["", f"KERAS VARIABLES NOT SET ({len(self.unset)})"]
            lines += _table(("Keras variable", "Keras shape"),
                            [(v.keras_path, v.keras_shape) for v in self.unset])
        return "\n".join(lines)
