"""`svf_summary`: how many values SVF trains, per layer and in total."""

import dataclasses
import math

from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.surgery.layer_paths import iter_layers


@dataclasses.dataclass(frozen=True)
class SVFLayerRow:
    path: str
    kernel_shape: tuple
    rank: int
    trainable_values: int
    kernel_values: int  # parameters of the plain layer it replaces (kernel + bias)


@dataclasses.dataclass(frozen=True)
class SVFSummary:
    """What `svf_summary` reports.

    `model_parameters` counts the model as it would be with every SVF layer
    merged back into a plain layer (the parameter count the paper's share
    refers to); the stored SVF model holds more, because U and V are kept in
    full. `trainable_values` counts every trainable value of the model (SVF
    factors and anything else trainable, e.g. a head); `svf_trainable_values`
    only the SVF factors.
    """

    rows: tuple
    svf_trainable_values: int
    trainable_values: int
    model_parameters: int

    @property
    def svf_share(self) -> float:
        """SVF-trained values as a fraction of the model's parameters."""
        return self.svf_trainable_values / max(self.model_parameters, 1)

    def __str__(self):
        width = max([len(r.path) for r in self.rows] + [5])
        lines = [f"{'layer':<{width}}  {'kernel':<20} {'rank':>6} {'trains':>10} {'of':>11}"]
        for r in self.rows:
            lines.append(f"{r.path:<{width}}  {str(r.kernel_shape):<20} {r.rank:>6} "
                         f"{r.trainable_values:>10,} {r.kernel_values:>11,}")
        lines.append(
            f"{len(self.rows)} SVF layers train {self.svf_trainable_values:,} values = "
            f"{100 * self.svf_share:.4f}% of the model's {self.model_parameters:,} parameters "
            f"(merged); {self.trainable_values:,} values train in all.")
        return "\n".join(lines)


def svf_summary(model) -> SVFSummary:
    """Counts the values SVF trains in `model`, per layer and in total.

    Args:
        model: a Keras model containing SVF layers at any depth.

    Returns:
        An `SVFSummary`; `print()` it for a table.
    """
    rows = []
    svf_variable_ids = set()
    merged_parameters = 0
    for path, layer in iter_layers(model):
        if not isinstance(layer, SVFFactorization):
            continue
        trainable = sum(math.prod(v.shape) for v in layer.trainable_variables
                        if v.name.startswith("svf_"))
        kernel_values = math.prod(layer._svf_kernel_shape) + (
            math.prod(layer.bias.shape) if layer.bias is not None else 0)
        rows.append(SVFLayerRow(path, tuple(layer._svf_kernel_shape), int(layer.svf_rank),
                                int(trainable), int(kernel_values)))
        svf_variable_ids.update(id(v) for v in layer.weights)
        merged_parameters += kernel_values
    # Every weight outside SVF layers, once each (shared layers are not double-counted).
    merged_parameters += sum(math.prod(v.shape) for v in model.weights
                             if id(v) not in svf_variable_ids)
    return SVFSummary(
        rows=tuple(rows),
        svf_trainable_values=sum(r.trainable_values for r in rows),
        trainable_values=int(sum(math.prod(v.shape) for v in model.trainable_variables)),
        model_parameters=int(merged_parameters),
    )
