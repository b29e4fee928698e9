"""Named adapters on a whole model: add, switch, disable, delete, list.

Each SVF layer keeps its adapters itself (`svf_tf.layers.svf_adapter_slots`);
these functions apply one operation to every SVF layer of a model, after
checking that all of them agree, so a model is never left half switched.

Example:
```python
svf_model = svf_tf.apply_svf(model, filters=r"conv[345]_block")
svf_tf.add_adapter(svf_model, "fold0")
svf_tf.add_adapter(svf_model, "fold1")
svf_tf.set_adapter(svf_model, "fold0")   # train: only fold0's singular values move
svf_tf.set_adapter(svf_model, "fold1")   # switch: no rebuild, no retrace
svf_tf.disable_adapter(svf_model)        # the base model's outputs
svf_tf.mix_adapters(svf_model, {"fold0": 0.5, "fold1": 0.5}, "half")
```
How mixes are formed (linear in S, or in log S for the exp parametrization):
`svf_tf.layers.svf_adapter_mixing`.
"""

from svf_tf.layers.svf_factorization import SVFFactorization
from svf_tf.surgery.layer_paths import iter_layers


def svf_layers(model):
    """[(path, layer)] of the SVF layers of `model`, or a ValueError if it has none."""
    layers = [(path, layer) for path, layer in iter_layers(model)
              if isinstance(layer, SVFFactorization)]
    if not layers:
        raise ValueError(
            f"Model '{model.name}' has no SVF layers; apply svf_tf.apply_svf first.")
    return layers


def list_adapters(model):
    """The names of the model's adapters, in the order they were added."""
    layers = svf_layers(model)
    names = layers[0][1].adapter_names
    for path, layer in layers[1:]:
        if layer.adapter_names != names:
            raise ValueError(
                f"The SVF layers of '{model.name}' disagree on their adapters: "
                f"'{layers[0][0]}' has {names}, '{path}' has {layer.adapter_names}; add and "
                "delete adapters with svf_tf.add_adapter/delete_adapter on the whole model.")
    return names


def active_adapter(model):
    """The adapter the model computes with, or None (the base, or no adapters)."""
    list_adapters(model)
    return svf_layers(model)[0][1].active_adapter


def _known(model, name, owner):
    names = list_adapters(model)
    if name not in names:
        raise ValueError(
            f"{owner}: model '{model.name}' has no adapter {name!r} (it has {names}); add it "
            "with svf_tf.add_adapter.")


def add_adapter(model, name):
    """Adds adapter `name`, equal to the base, to every SVF layer of `model`.

    It is not made active: call `set_adapter`. The first adapter takes the
    layers' current factors as the base, so add adapters before training.
    """
    list_adapters(model)
    layers = svf_layers(model)
    for _, layer in layers:  # every check first: all layers or none
        layer.check_can_add_adapter(name)
    for _, layer in layers:
        layer.add_adapter(name)


def set_adapter(model, name):
    """Makes `name` the adapter every SVF layer computes with and trains.

    Only values are copied (R floats per layer), so a compiled or traced
    function of the model keeps working without a retrace. Switching away
    from disabled adapters makes the factors trainable again.
    """
    _known(model, name, "set_adapter")
    for _, layer in svf_layers(model):
        layer.set_adapter(name)


def disable_adapter(model):
    """Every SVF layer back to its base factors (frozen) until `set_adapter`."""
    list_adapters(model)
    for _, layer in svf_layers(model):
        layer.disable_adapter()


def delete_adapter(model, name):
    """Removes adapter `name` (disabling adapters first if it is active)."""
    _known(model, name, "delete_adapter")
    for _, layer in svf_layers(model):
        layer.delete_adapter(name)


def mix_adapters(model, weights, name):
    """Adds adapter `name`, the mix sum_k w_k of adapters `weights` ({name: w_k}).

    Linear in S for parametrization "direct", in s' (log S) for "exp"; weights
    {"a": 1, "b": 0} give adapter "a" exactly. The mix is not made active.
    Only for SVF layers that train S alone (adapters then share U and V).
    """
    for adapter in weights if isinstance(weights, dict) else ():
        _known(model, adapter, "mix_adapters")
    layers = svf_layers(model)
    for _, layer in layers:  # every check first: all layers or none
        layer.check_can_mix(weights)
        layer.check_can_add_adapter(name)
    mixes = [layer.mixed_adapter_values(weights) for _, layer in layers]
    for (_, layer), values in zip(layers, mixes, strict=True):
        layer.add_adapter(name)
        layer.set_adapter_values(name, values)


def learn_adapter_mixing(model, names, initial_weights=None):
    """Trains K mixing weights per SVF layer over adapters `names`, all else frozen.

    Transformer-squared's few-shot adaptation by gradient descent: each layer
    computes with sum_k w_k adapter_k and only its `svf_mix_weights` (K
    values) train. Returns those variables, one per layer. End it with
    `freeze_adapter_mixing`.
    """
    for adapter in names:
        _known(model, adapter, "learn_adapter_mixing")
    layers = svf_layers(model)
    weights = dict.fromkeys(names, 1.0)
    for _, layer in layers:
        layer.check_can_mix(weights, "learn_adapter_mixing")
    for _, layer in layers:
        layer.learn_adapter_mixing(names, initial_weights)
    return [layer.svf_mix_weights for _, layer in layers]


def freeze_adapter_mixing(model, name):
    """Stores every layer's learned mix as adapter `name` and makes it active."""
    layers = svf_layers(model)
    for _, layer in layers:
        if not layer.mixing_adapters:
            raise ValueError(
                f"freeze_adapter_mixing: layer '{layer.name}' of '{model.name}' is not "
                "learning a mix; call svf_tf.learn_adapter_mixing first.")
        layer.check_can_add_adapter(name)
    for _, layer in layers:
        layer.freeze_adapter_mixing(name)
