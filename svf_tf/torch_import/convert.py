"""Converting PyTorch state dicts of the reference models into our Keras models.

    from svf_tf.torch_import import convert_checkpoint
    report = convert_checkpoint("initmodel/resnet50_v2.pth", "resnet50_deep_stem",
                                "resnet50_v2.weights.h5")
    print(report)
    backbone = build_backbone("resnet50", weights="resnet50_v2.weights.h5", stem="deep",
                              dilation="torchvision", finetune="svf")

`convert_state_dict` assigns an in-memory state dict to a Keras model you
built; `convert_checkpoint` reads the `.pth` file, builds the target's model
(`target_models`), converts and writes Keras weights.
"""

import functools
import os

import keras
import numpy as np

from svf_tf.backbones.deep_stem import TORCH_BN_EPSILON
from svf_tf.torch_import.conversion_report import (
    ConversionReport,
    LoadedTensor,
    OmittedTensor,
    UnsetVariable,
)
from svf_tf.torch_import.fss_model_keys import bam_placement, baseline_placement, pfenet_placement
from svf_tf.torch_import.placement import Alias, Placement, Skip
from svf_tf.torch_import.pspnet_keys import pspnet_placement
from svf_tf.torch_import.resnet_keys import resnet_deep_stem_placement
from svf_tf.torch_import.state_dict_io import (
    MODULE_PREFIX,
    is_tensor,
    load_checkpoint,
    strip_module_prefix,
    to_numpy,
    unwrap_checkpoint,
)
from svf_tf.torch_import.svf_factors import merge_svf_factors
from svf_tf.torch_import.target_models import (
    BACKBONE_TARGETS,
    build_target_model,
    check_target,
)
from svf_tf.torch_import.vgg_keys import vgg16_bn_placement
from svf_tf.weights.saving import save_weights_files

WEIGHTS_SUFFIX = ".weights.h5"

_BACKBONE_PLACEMENTS = {"resnet50": resnet_deep_stem_placement, "vgg16": vgg16_bn_placement}
_MODEL_PLACEMENTS = {"pspnet": pspnet_placement, "baseline": baseline_placement,
                     "pfenet": pfenet_placement, "bam": bam_placement}


class IncompleteConversionError(ValueError):
    """Tensors could not be placed or Keras variables were not set; `.report` says which."""

    def __init__(self, report: ConversionReport, hint: str, max_lines: int = 20):
        self.report = report
        problems = report.problems().splitlines()
        if len(problems) > max_lines:
            problems = [*problems[:max_lines],
                        f"... and {len(problems) - max_lines} more (see .report)"]
        super().__init__("\n".join([f"{report.summary()}.", *problems, hint]))


def placement_function(target, backbone=None):
    """The key map of a target: PyTorch key -> `Placement` | `Skip` | `Alias` | None."""
    backbone_placement = _BACKBONE_PLACEMENTS[check_target(target, backbone)]
    if target in BACKBONE_TARGETS:
        return backbone_placement
    return functools.partial(_MODEL_PLACEMENTS[target], backbone_placement=backbone_placement)


def _flat_layers(model):
    # Keras has no public iterator over nested layers (including those held by
    # custom layers such as PSPNetHead); `_flatten_layers` is Keras' own.
    return model._flatten_layers(include_self=True, recursive=True)


def _variables_by_path(model):
    """{variable.path: [variables]} over the model's weights, shared variables once."""
    by_path, seen = {}, set()
    for variable in model.weights:
        if id(variable) not in seen:
            seen.add(id(variable))
            by_path.setdefault(variable.path, []).append(variable)
    return by_path


def _batch_norm_layers(model):
    """{id(variable): the BatchNormalization layer owning it}."""
    owners = {}
    for layer in _flat_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in layer.weights:
                owners[id(variable)] = layer
    return owners


def _shape_error(key, torch_shape, layout, path, keras_shape):
    return ValueError(
        f"shape mismatch: PyTorch tensor {key!r} {torch_shape} does not fit Keras variable "
        f"{path!r} {keras_shape} (layout {layout.name}). The checkpoint was trained with another "
        "configuration: check the backbone, the dataset (number of classes) and the shot "
        "against the checkpoint.")


def _tensors(state_dict, report):
    """The state dict as {key: numpy array}, unwrapped, prefix-stripped, SVF factors merged."""
    state_dict, ignored = unwrap_checkpoint(state_dict)
    if ignored:
        report.notes.append(f"checkpoint entries without model weights, ignored: "
                            f"{', '.join(ignored)}")
    prefixed = sum(str(key).startswith(MODULE_PREFIX) for key in state_dict)
    if prefixed:
        report.notes.append(f"removed the {MODULE_PREFIX!r} prefix (DataParallel) from "
                            f"{prefixed} keys")
    tensors = {}
    for key, value in strip_module_prefix({str(k): v for k, v in state_dict.items()}).items():
        if is_tensor(value):
            tensors[key] = to_numpy(value)
        else:
            report.skipped.append(OmittedTensor(key, (), f"not a tensor ({type(value).__name__})"))
    tensors, merged = merge_svf_factors(tensors)
    for key, sources in merged.items():
        report.notes.append(f"{key} merged from the SVF factors {', '.join(sources)}")
    return tensors


def _placed_value(key, value, decision, variables, batch_norms, model_name):
    """(variable, value in Keras' layout) for a `Placement`, or the reason it has no variable.

    Raises:
        ValueError: the shape does not fit, the path is ambiguous, or the
            variable belongs to a BatchNorm whose epsilon is not PyTorch's.
    """
    found = variables.get(decision.keras_path, [])
    if not found:
        return f"model '{model_name}' has no Keras variable {decision.keras_path!r}"
    if len(found) > 1:
        raise ValueError(
            f"model '{model_name}' has {len(found)} variables named {decision.keras_path!r} "
            "(two backbones, e.g. BAM + SVF?); convert into a model without SVF, then build the "
            "SVF model from the written weights.")
    variable = found[0]
    converted = decision.layout.apply(value)
    if converted is None or tuple(converted.shape) != tuple(variable.shape):
        raise _shape_error(key, tuple(value.shape), decision.layout, decision.keras_path,
                           tuple(variable.shape))
    # PyTorch's running variance is only right with PyTorch's epsilon.
    layer = batch_norms.get(id(variable))
    if layer is not None and abs(layer.epsilon - TORCH_BN_EPSILON) > 1e-12:
        raise ValueError(
            f"Keras BatchNormalization '{layer.name}' has epsilon {layer.epsilon}, but the "
            f"PyTorch statistics of {key!r} assume {TORCH_BN_EPSILON}; build the model with "
            "bn_epsilon=None (PyTorch's default) for converted weights.")
    return variable, converted


def _alias_outcome(key, value, decision, tensors):
    """(skipped?, reason) for a tensor that should repeat another key."""
    primary = tensors.get(decision.primary_key)
    if primary is None or not np.array_equal(primary, value):
        state = "missing" if primary is None else "different"
        hint = f"; {decision.if_different}" if decision.if_different and primary is not None \
            else ""
        return False, f"should repeat {decision.primary_key}, which is {state}{hint}"
    return True, f"same module as {decision.primary_key} (registered twice)"


def convert_state_dict(state_dict, keras_model, target, *, backbone=None, source=None):
    """Assigns the tensors of a PyTorch state dict to a Keras model's variables.

    Every tensor is placed (converted to Keras' layout and assigned),
    skipped on purpose, or reported as unplaced; Keras variables the state
    dict does not set are reported too. Nothing is assigned unless every
    placed tensor fits, so a failed conversion leaves the model unchanged.

    Args:
        state_dict: a mapping key -> torch tensor or numpy array, optionally
            wrapped as {"state_dict": ...} and/or with `module.` prefixes.
        keras_model: the model to fill, built without SVF (see
            `target_models.build_target_model` for the one each target needs).
        target: one of `target_models.TARGETS`.
        backbone: "resnet50" or "vgg16" for the model targets.
        source: checkpoint name shown in the report.

    Returns:
        A `ConversionReport`.

    Raises:
        ValueError: a tensor whose shape does not fit its Keras variable
            (the message names the key, both shapes and the variable), two
            tensors for one variable, a Keras BatchNorm whose epsilon is not
            PyTorch's 1e-5, or an ambiguous variable path.
    """
    placement = placement_function(target, backbone)
    report = ConversionReport(target, keras_model.name, source)
    tensors = _tensors(state_dict, report)
    variables = _variables_by_path(keras_model)
    batch_norms = _batch_norm_layers(keras_model)
    assignments = {}  # Keras path -> (PyTorch key, value, variable)
    for key, value in tensors.items():
        shape = tuple(value.shape)
        decision = placement(key)
        if decision is None:
            report.unplaced.append(OmittedTensor(
                key, shape, f"no layer of a {target} model corresponds to this key"))
        elif isinstance(decision, Skip):
            report.skipped.append(OmittedTensor(key, shape, decision.reason))
        elif isinstance(decision, Alias):
            skipped, reason = _alias_outcome(key, value, decision, tensors)
            (report.skipped if skipped else report.unplaced).append(
                OmittedTensor(key, shape, reason))
        elif isinstance(decision, Placement):
            placed = _placed_value(key, value, decision, variables, batch_norms,
                                   keras_model.name)
            if isinstance(placed, str):
                report.unplaced.append(OmittedTensor(key, shape, placed))
                continue
            if decision.keras_path in assignments:
                raise ValueError(
                    f"PyTorch tensors {assignments[decision.keras_path][0]!r} and {key!r} both "
                    f"map to Keras variable {decision.keras_path!r}; the checkpoint holds two "
                    "copies of one layer.")
            variable, converted = placed
            assignments[decision.keras_path] = (key, converted, variable)
            report.loaded.append(LoadedTensor(key, shape, decision.layout.name,
                                              decision.keras_path, tuple(variable.shape)))
        else:
            raise TypeError(f"internal: key map returned {decision!r} for {key!r}")
    report.unset = [UnsetVariable(path, tuple(found[0].shape))
                    for path, found in variables.items() if path not in assignments]
    for _, converted, variable in assignments.values():
        variable.assign(converted.astype(variable.dtype))
    return report


def _check_output(path, argument):
    if path is None:
        return None
    path = os.fspath(path)
    if not path.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"{argument}={path!r} must end in {WEIGHTS_SUFFIX!r} (Keras' weights "
                         "file format).")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{argument}={path!r}: directory {directory} does not exist.")
    return path


def convert_checkpoint(checkpoint, target, output=None, *, backbone=None, dilation=None,
                       dataset="pascal", shot=1, head_options=None, backbone_output=None,
                       allow_unplaced=False, allow_unset=False):
    """Reads a PyTorch checkpoint, converts it for `target` and writes Keras weights.

    Args:
        checkpoint: path of the `.pth` file (read with weights_only=True).
        target: "resnet50_deep_stem", "vgg16_bn", "pspnet", "baseline",
            "pfenet" or "bam" (see `target_models`).
        output: the `.weights.h5` file to write, or None (dry run). For the
            backbone targets it loads with `build_backbone(...,
            weights=output)`; for the others with `model.load_weights(output)`
            on the model `build_target_model` (or `build_pspnet_model` /
            `build_fsss_model` with the same options) builds.
        backbone: "resnet50" or "vgg16" (model targets).
        dilation: ResNet-50 dilation of the model built ("all_blocks" D1,
            "torchvision" D2); the weights do not depend on it.
        dataset: "pascal" or "coco" (PSPNet classes, BAM base classes).
        shot: BAM: the shot its checkpoint was trained for.
        head_options: extra `build_fsss_model` options.
        backbone_output: model targets: also write the backbone's weights
            alone (for `build_backbone(..., weights=...)`, e.g. BAM's stage-1
            backbone under an SVF model).
        allow_unplaced: write even if some tensors could not be placed.
        allow_unset: write even if some Keras variables were not set.

    The files are written whole or not at all (`svf_tf.weights.saving`): a
    full disk or Ctrl-C leaves the previous files, or none.

    Returns:
        The `ConversionReport`.

    Raises:
        IncompleteConversionError: unplaced tensors or unset variables that
            were not allowed (nothing is written; `.report` has the details).
        ValueError, FileNotFoundError: see `convert_state_dict`,
            `state_dict_io.load_checkpoint`; a bad output path.
        TorchNotInstalledError: PyTorch is missing.
        OSError: an output file cannot be written (naming it).
    """
    check_target(target, backbone)
    output = _check_output(output, "output")
    backbone_output = _check_output(backbone_output, "backbone_output")
    if backbone_output and target in BACKBONE_TARGETS:
        raise ValueError(f"backbone_output applies to model targets; for {target!r} the output "
                         "is the backbone already.")
    state_dict = load_checkpoint(checkpoint)
    model, backbone_model = build_target_model(target, backbone=backbone, dilation=dilation,
                                               dataset=dataset, shot=shot,
                                               head_options=head_options)
    report = convert_state_dict(state_dict, model, target, backbone=backbone,
                                source=os.fspath(checkpoint))
    if (report.unplaced and not allow_unplaced) or (report.unset and not allow_unset):
        raise IncompleteConversionError(
            report, "Nothing was written. Check the target, backbone, dataset and shot; to "
            "write anyway, allow unplaced tensors / unset variables explicitly.")
    # Whole files or none: a full disk or Ctrl-C leaves the previous files (or none).
    save_weights_files(*[(m, path) for m, path in ((model, output),
                                                    (backbone_model, backbone_output)) if path])
    return report
