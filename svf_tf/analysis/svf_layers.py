"""The SVF layers of a model as the analysis names them: path, stage, conv kind, S.

A layer is named by its path (`svf_tf.surgery.layer_paths`, e.g.
"resnet50_backbone/conv4_block6_2_conv") or by its last part alone
("conv4_block6_2_conv") when that is unique. Its stage (layer0..layer4) is
read from the name: Keras' ResNet50 `conv{s+1}_block..`, the deep stem's
PyTorch-style `layer{s}_..`, VGG16's `block{s+1}_..`; its kind is "1x1" or
"3x3" (any larger kernel), as the fine-tuning settings count them.
"""

import dataclasses
import re

import numpy as np

from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.surgery.layer_paths import iter_layers

#: (regex on the layer name, stage of its first group) for the backbones' naming schemes.
_STAGE_PATTERNS = ((re.compile(r"^conv(\d)_block\d+_"), -1),
                   (re.compile(r"^layer(\d)_"), 0),
                   (re.compile(r"^block(\d)_"), -1),
                   (re.compile(r"^conv\d(_conv)?$"), None))  # the stems: layer0


@dataclasses.dataclass(frozen=True)
class SVFLayerInfo:
    """One SVF layer: `path`, `stage` (0..4 or None), `kind` ("1x1"/"3x3"/"dense"), `layer`."""

    path: str
    stage: int | None
    kind: str
    layer: object


def layer_stage(name):
    """The backbone stage (0..4) of a layer name, or None when the name says none."""
    for pattern, offset in _STAGE_PATTERNS:
        match = pattern.match(name)
        if match:
            return 0 if offset is None else int(match[1]) + offset
    return None


def _kind(layer):
    size = getattr(layer, "kernel_size", None)
    if size is None:
        return "dense"
    return "1x1" if tuple(size) == (1, 1) else "3x3"


def svf_layer_infos(model):
    """`SVFLayerInfo` of every SVF layer of `model`, in graph order (nested models included)."""
    return [SVFLayerInfo(path, layer_stage(path.rsplit("/", 1)[-1]), _kind(layer), layer)
            for path, layer in iter_layers(model) if isinstance(layer, SVFFactorization)]


def singular_values(infos):
    """{path: float64 array of the layer's effective singular values S} of `infos`."""
    return {info.path: np.asarray(info.layer.singular_values, np.float64) for info in infos}


def resolve_layer(name, paths):
    """The one path of `paths` that `name` names (the whole path or its last part).

    Raises:
        ValueError: no or several layers match; the message lists the valid names.
    """
    if name in paths:
        return name
    matches = [path for path in paths if path.rsplit("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    valid = ", ".join(path.rsplit("/", 1)[-1] for path in paths) or "none"
    problem = "names several layers" if matches else "is not an SVF layer of this run"
    raise ValueError(f"--analysis_layers: {name!r} {problem}; the SVF layers are: {valid}.")


_BLOCK = re.compile(r"^(conv\d_block\d+|layer\d_\d+)_")


def stage_layers(infos, stage, kind):
    """The paths of the `kind` convs of `stage`, as the paper's grids (Figs. 8-11) take them.

    3x3: every 3x3 conv of the stage. 1x1: the last 1x1 conv of each block
    (a ResNet bottleneck's expanding conv, the paper's "last 1x1 convolution
    of each block"); a 1x1 conv outside a named block counts on its own.
    """
    found = [info for info in infos if info.stage == stage and info.kind == kind]
    if kind != "1x1":
        return [info.path for info in found]
    last = {}
    for info in found:
        match = _BLOCK.match(info.path.rsplit("/", 1)[-1])
        last[match[1] if match else info.path] = info.path
    return list(last.values())


def last_of(infos, stage, kind):
    """The path of the last `kind` conv of `stage` among `infos`, or None."""
    found = [info.path for info in infos if info.stage == stage and info.kind == kind]
    return found[-1] if found else None


def default_layers(infos):
    """The paper's layers (Figs. 4-6): the last 3x3 and the last 1x1 conv of layer3.

    Falls back to the last SVF layer of all when layer3 has none of them
    (e.g. a model with other layer names).
    """
    paths = [path for path in (last_of(infos, 3, "3x3"), last_of(infos, 3, "1x1")) if path]
    return paths or [infos[-1].path]
