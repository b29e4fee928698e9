"""Replacing a layer held by a subclassed layer or model, in place.

A subclassed layer (a KerasHub `ViTEncoderBlock`, Keras' `MultiHeadAttention`)
creates its sublayers in `__init__` or `build` and calls them from `call`
through its own attributes (`self.mlp`, `self._query_dense`,
`self.encoder_layers[i]`). No graph describes them, so `clone_model` cannot
rebuild them; instead, the attribute that holds a sublayer is pointed at the
new layer, and the parent's `call` uses it from then on. This is how Keras'
`enable_lora` and `quantize` work too: in place.

The new layer also takes the old one's slot in the parent's tracked list of
sublayers (Keras' `Tracker.replace_tracked_value`), so the order of
`parent.weights` and of the layer paths stays the same, and the old layer's
variables leave the model. Built under the old layer's name scope
(`creation_scope`), the new layer's variables get the paths the old ones had
(`vit_encoder/transformer_block_1/mha/query/svf_s`), so two blocks' "query"
layers do not share variable paths.
"""

import contextlib

import keras

from svf_tf.surgery.layer_paths import is_graph_model


def _holders(parent, old):
    """[(attribute name, key or None)] of `parent`'s attributes that hold `old`.

    A direct attribute (key None), or an item of a list, tuple or dict
    attribute (one level deep, e.g. ViTEncoder's `encoder_layers[i]`).
    """
    found = []
    for name, value in vars(parent).items():
        if name == "_layers":  # Keras' tracked store, updated separately
            continue
        if value is old:
            found.append((name, None))
        elif isinstance(value, (list, tuple)):
            found += [(name, i) for i, item in enumerate(value) if item is old]
        elif isinstance(value, dict):
            found += [(name, key) for key, item in value.items() if item is old]
    return found


@contextlib.contextmanager
def creation_scope(old):
    """The name scope `old` was built in, for building its replacement."""
    parent_path = getattr(old, "_parent_path", None)
    if not parent_path:
        yield
        return
    head, _, last = parent_path.rpartition("/")
    with keras.name_scope(last, override_parent=head):
        yield


def check_graph_reachable(in_graph, path, parent, owner):
    """Raises a ValueError for a layer of a functional model held by a subclassed layer."""
    if is_graph_model(parent) and not in_graph:
        raise ValueError(
            f"{owner}: layer '{path}' belongs to the functional model '{parent.name}', which "
            "sits inside a subclassed layer; neither clone_model nor an in-place swap reaches "
            f"it. Call {owner} on '{parent.name}' and put the result in its place.")


def check_replaceable(parent, old, path, owner):
    """Raises the ValueError `replace_sublayer(parent, old, ...)` would raise, changing nothing."""
    if not _holders(parent, old):
        raise ValueError(
            f"{owner}: layer '{path}' is a sublayer of {type(parent).__name__} "
            f"'{parent.name}', but no attribute of it (nor a list, tuple or dict attribute) "
            "holds the layer, so it cannot be replaced in place; leave it out with filters=.")


def replace_sublayer(parent, old, new):
    """Makes `parent` hold and call `new` wherever it held `old`.

    Args:
        parent: a Keras layer or model (not functional: a graph's layers are
            replaced by `clone_model`).
        old: a direct sublayer of `parent` (in `parent._layers`).
        new: the layer to put in its place (built).
    """
    holders = _holders(parent, old)
    tracker = parent._tracker
    locked = tracker.locked  # True once the parent is built
    tracker.unlock()
    try:
        tracker.replace_tracked_value("layers", old, new)
        for name, key in holders:
            if key is None:
                setattr(parent, name, new)  # already tracked: only the attribute changes
                continue
            container = getattr(parent, name)
            if isinstance(container, tuple):
                items = [new if item is old else item for item in container]
                setattr(parent, name, type(container)(*items) if hasattr(container, "_fields")
                        else type(container)(items))
            else:
                container[key] = new
    finally:
        if locked:
            tracker.lock()
