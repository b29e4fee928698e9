"""Stable, unique paths for the layers of a (nested) Keras model.

`layer.path` in Keras 3 is the name scope at creation time, which for layers
of a functional model is just the layer name and is not unique across nested
models. SVF adapters and filters need a path that is: the chain of layer names
from the model given (excluded) down to the layer, joined by "/", e.g.
"backbone/conv4_block1_2_conv".
"""

import keras
from keras.src.models.functional import Functional


def is_graph_model(layer) -> bool:
    """Whether `layer` is a model `keras.models.clone_model` can rebuild."""
    return isinstance(layer, (Functional, keras.Sequential))


def _children(layer):
    if is_graph_model(layer):
        return [child for child in layer.layers if not isinstance(child, keras.layers.InputLayer)]
    return list(layer._flatten_layers(include_self=False, recursive=False))


def walk_layers(model):
    """Yields (path, layer, parent, in_graph) for every layer below `model`, depth first.

    `parent` is the model or layer whose sublayers list holds `layer`;
    `in_graph` is True when `model` and every container on the way down are
    functional/Sequential models, i.e. `clone_model` can replace the layer.
    A layer reachable along several paths (a shared layer) is yielded once,
    under the first path. Sibling layers with equal names get "#k" suffixes.
    """
    seen = set()

    def walk(container, prefix, in_graph):
        names = {}
        for child in _children(container):
            if id(child) in seen:
                continue
            seen.add(id(child))
            count = names.get(child.name, 0)
            names[child.name] = count + 1
            name = child.name if count == 0 else f"{child.name}#{count}"
            path = f"{prefix}/{name}" if prefix else name
            yield path, child, container, in_graph
            yield from walk(child, path, in_graph and is_graph_model(child))

    yield from walk(model, "", is_graph_model(model))


def iter_layers(model, *, graph_models_only=False):
    """Yields (path, layer) for every layer below `model`, depth first.

    Args:
        model: a Keras model or layer.
        graph_models_only: only the layers of functional/Sequential models
            reached through such models (those `clone_model` can replace);
            otherwise every layer, inside subclassed layers and models too.

    Paths are those of `walk_layers`.
    """
    for path, layer, _, in_graph in walk_layers(model):
        if in_graph or not graph_models_only:
            yield path, layer
