"""SGD with PyTorch's semantics and per-variable learning-rate multipliers (`torch.optim.SGD`).

Keras' `SGD(momentum=...)` keeps `v <- m*v - lr*g; w <- w + v` (the learning
rate is folded into the velocity, so a changing learning rate acts
differently) and its `weight_decay` is decoupled (`w <- w - lr*wd*w`).
PyTorch's `torch.optim.SGD(momentum=m, weight_decay=wd)`, which PFENet, BAM
and the SVF code use, does for every parameter that has a gradient:

    g   <- g + wd * w          (coupled L2, biases and singular values included)
    buf <- m * buf + g         (dampening 0, no Nesterov)
    w   <- w - lr * buf

`TorchSGD` implements exactly this (Keras 3 applies `weight_decay` decoupled
for every optimizer, SGD included: `Optimizer._apply_weight_decay` in
`keras/src/optimizers/base_optimizer.py`).
"""

import re
import warnings

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="svf_tf")
class TorchSGD(keras.optimizers.Optimizer):
    """`torch.optim.SGD` (momentum, coupled weight decay) as a Keras optimizer.

    Per-variable learning-rate multipliers stand in for PyTorch's parameter
    groups: the learning rate of a variable is `learning_rate(step) *
    multiplier`, where the multiplier comes from the first rule of
    `lr_multipliers` that matches it (1.0 when none does). A rule is a regex,
    searched in the variable's path (`variable.path`, e.g.
    "layer3/conv2/svf_s"; `variable.name` for a plain `tf.Variable`), or a
    predicate `fn(variable) -> bool`. The SVF recipe (SVF code `model/aspp.py`,
    `OneModel.get_optim`: layer2-4 groups at `LR/10`) runs
    the backbone singular values at 1/10 of the heads' rate:
    `lr_multipliers={r"svf_s$": 0.1}`. The PFENet/BAM "x10" rule scales every
    group alike, so it belongs in the schedule (`PolyDecay(scale=10)`), not
    here.

    Variables whose gradient is None are not touched at all, weight decay and
    momentum buffer included, as in PyTorch. The momentum buffer starts at
    zero, which with dampening 0 gives PyTorch's `buf = g` on a variable's
    first update exactly (`m * 0 + g == g`).

    Keras' own (decoupled) `weight_decay` is not used: `weight_decay` here is
    PyTorch's coupled L2 term, applied to every optimised variable unless
    excluded with `optimizer.exclude_from_weight_decay(...)` before `build`.

    Works with `apply_gradients` under `tf.distribute.MirroredStrategy`:
    create and build it in `strategy.scope()`
    (`optimizer.build(model.trainable_variables)`) before the first replica
    step. The gradients are summed over replicas, so scale the loss by the
    global batch. Its state (iterations, momentum buffers) is tracked by
    `tf.train.Checkpoint`; build it on the variables before restoring.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`
            (see `lr_schedules`); evaluated at `optimizer.iterations`.
        momentum: momentum factor (0.9 in the references; PyTorch's default
            0); 0 keeps no buffer.
        weight_decay: coupled L2 factor (1e-4 in the references; default 0).
        lr_multipliers: optional mapping {regex or predicate: multiplier}, or
            a sequence of (rule, multiplier) pairs; the first match wins.
        name: optimizer name.
        **kwargs: other `keras.optimizers.Optimizer` arguments (clipnorm,
            clipvalue, global_clipnorm, loss_scale_factor, ...).

    Example:
    ```python
    optimizer = TorchSGD(make_lr_schedule("constant", 0.015), momentum=0.9,
                         weight_decay=1e-4, lr_multipliers={r"svf_s$": 0.1})
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    ```
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, weight_decay=0.0, lr_multipliers=None,
                 name="torch_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=None, name=name, **kwargs)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not (
                0.0 <= momentum < 1.0):
            raise ValueError(f"momentum={momentum!r} must be a float in [0, 1), e.g. 0.9.")
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or (
                weight_decay < 0):
            raise ValueError(
                f"weight_decay={weight_decay!r} must be a float >= 0 (PyTorch's coupled L2 "
                "factor, e.g. 1e-4).")
        self.momentum = float(momentum)
        self.l2_weight_decay = float(weight_decay)
        self.lr_multipliers = _parse_rules(lr_multipliers)

    def build(self, variables):
        """Creates one momentum buffer per variable and resolves their multipliers."""
        if self.built:
            return
        strategy = tf.distribute.get_strategy()
        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context() is False and (
                strategy.num_replicas_in_sync > 1):
            # Creating the buffers lazily inside `strategy.run` fails later with
            # an obscure "must feed a value for placeholder" error.
            raise ValueError(
                f"TorchSGD '{self.name}' is being built inside a replica function of "
                f"{type(strategy).__name__}; build it first, in the strategy scope: "
                "`with strategy.scope(): optimizer.build(model.trainable_variables)`.")
        super().build(variables)
        self.momentums = []
        if self.momentum != 0.0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")
        self._multipliers = [self._resolve_multiplier(v) for v in variables]
        # PyTorch decays everything it optimises; Keras' exclusion list (set
        # before build) is honoured for users who want otherwise.
        self._decays = [self.l2_weight_decay if self._use_weight_decay(v) else 0.0
                        for v in variables]
        unused = [rule for rule, _ in self.lr_multipliers
                  if isinstance(rule, str) and not any(
                      re.search(rule, _variable_path(v)) for v in variables)]
        if unused:
            warnings.warn(
                f"TorchSGD lr_multipliers patterns {unused} match none of the {len(variables)} "
                "optimised variables (paths like "
                f"{[_variable_path(v) for v in variables[:3]]}).", stacklevel=2)

    def lr_multiplier(self, variable):
        """The learning-rate multiplier applied to `variable` (1.0 if no rule matches)."""
        if self.built:
            try:
                return self._multipliers[self._get_variable_index(variable)]
            except KeyError:
                pass
        return self._resolve_multiplier(variable)

    def update_step(self, gradient, variable, learning_rate):
        """One PyTorch SGD update of `variable` (called only when its gradient is not None)."""
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        gradient = tf.cast(gradient, dtype)
        if isinstance(gradient, tf.IndexedSlices):
            # Coupled weight decay touches every row, so densify (PyTorch has no
            # sparse gradients for the layers used here either).
            gradient = tf.convert_to_tensor(gradient)
        if self._decays[index]:
            gradient = gradient + tf.cast(self._decays[index], dtype) * tf.convert_to_tensor(
                variable)
        lr = tf.cast(learning_rate, dtype) * tf.cast(self._multipliers[index], dtype)
        if self.momentum != 0.0:
            buffer = self.momentums[index]
            gradient = tf.cast(self.momentum, dtype) * tf.convert_to_tensor(buffer) + gradient
            self.assign(buffer, gradient)
        self.assign_sub(variable, lr * gradient)

    def get_config(self):
        rules = []
        for rule, multiplier in self.lr_multipliers:
            if not isinstance(rule, str):
                raise ValueError(
                    f"TorchSGD with a predicate lr_multipliers rule ({rule!r}) cannot be "
                    "serialized; use regex strings on variable paths to save this optimizer's "
                    "config.")
            rules.append([rule, multiplier])
        config = super().get_config()
        config.update({"momentum": self.momentum, "weight_decay": self.l2_weight_decay,
                       "lr_multipliers": rules or None})
        return config

    def _resolve_multiplier(self, variable):
        path = _variable_path(variable)
        for rule, multiplier in self.lr_multipliers:
            if re.search(rule, path) if isinstance(rule, str) else rule(variable):
                return multiplier
        return 1.0


def _variable_path(variable):
    return getattr(variable, "path", None) or variable.name


def _parse_rules(lr_multipliers):
    """[(regex or predicate, float)] from a mapping or a sequence of pairs."""
    if lr_multipliers is None:
        return []
    items = lr_multipliers.items() if hasattr(lr_multipliers, "items") else lr_multipliers
    rules = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ValueError(
                f"lr_multipliers entry {item!r} must be a (regex or predicate, multiplier) pair; "
                "pass e.g. {r'svf_s$': 0.1}.")
        rule, multiplier = item
        if isinstance(rule, str):
            re.compile(rule)  # a bad pattern fails here, not at the first step
        elif not callable(rule):
            raise ValueError(
                f"lr_multipliers rule {rule!r} must be a regex string (searched in the variable "
                "path) or a callable(variable) -> bool.")
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or (
                multiplier < 0):
            raise ValueError(
                f"lr_multipliers[{rule!r}] = {multiplier!r} must be a float >= 0.")
        rules.append((rule, float(multiplier)))
    return rules
