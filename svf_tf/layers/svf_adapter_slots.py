"""Named adapters of one SVF layer: several sets of trained factors on shared U/V.

Every adapter of a layer shares its frozen factors (U and V when only S
trains); an adapter is just the values of the trainable factors (S, or s'
for the exp parametrization: R numbers per layer). The layer keeps

- the *active* factor variables (`svf_s`, ...), the only ones that train and
  the only ones `call()` reads, so switching adapters changes values, never
  the graph: a traced or compiled function keeps running without a retrace;
- a frozen copy of each adapter's values (`svf_adapter_<name>__svf_s`), and
  of the base values (`svf_base__svf_s`) for `disable_adapter`.

`set_adapter(name)` first writes the active values back into the copy of the
adapter that was active, then copies the new adapter in: a few assignments of
R floats per layer. The first `add_adapter` takes the layer's current factors
as the base, so adapters are added before training (a full-rank layer checks
this against its base-kernel fingerprint).

This is PEFT's `add_adapter` / `set_adapter` / `delete_adapter` /
`disable_adapter` (huggingface/peft, `src/peft/tuners/tuners_utils.py`) on
singular values; the config records the adapter names and the active one
(keys only present once an adapter exists, as Keras' LoRA keys).
"""

import re

import numpy as np
from keras import ops

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _copy(variable):
    # A new buffer: under JAX, assigning one variable's array to another would
    # make both hold the same buffer, which a jitted train step donates twice.
    return ops.copy(ops.convert_to_tensor(variable))


def check_adapter_name(name, owner="add_adapter"):
    """Raises a one-line ValueError unless `name` is a usable adapter name."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{owner}: adapter name {name!r} is not accepted: use 1 to 64 letters, digits, "
            "'_', '.' or '-' (e.g. 'fold0_1shot').")


class _AdapterState:
    """The layer's adapters; a plain object, so Keras does not track it as state."""

    def __init__(self):
        self.base = {}       # factor variable name -> frozen copy of its base values
        self.adapters = {}   # adapter name -> {factor variable name -> frozen copy}
        self.active = None   # the adapter in the active variables; None: the base


class SVFAdapterSlots:
    """Mixin of `SVFFactorization`: named adapters (see the module docstring)."""

    def _init_svf_adapters(self, adapters, active_adapter):
        names = list(adapters or [])
        for name in names:
            check_adapter_name(name, f"{type(self).__name__}(adapters=...)")
        if len(set(names)) != len(names):
            raise ValueError(f"{type(self).__name__}: adapters={names} repeats a name.")
        if active_adapter is not None and active_adapter not in names:
            raise ValueError(
                f"{type(self).__name__}: active_adapter={active_adapter!r} is not one of "
                f"adapters={names}; name one of them or None (the base).")
        self._svf_pending_adapters = (names, active_adapter)
        self._svf_adapter_state = _AdapterState()

    def _svf_adapted_variables(self):
        """The factor variables an adapter replaces, in a fixed order."""
        names = {"U": ["svf_u"], "V": ["svf_v"],
                 "S": ["svf_s" if self.parametrization == "direct" else "svf_s_prime"]}
        return [getattr(self, n) for f in self.trainable_factors for n in names[f]]

    def _svf_copy(self, name, value):
        # Row-major, as every factor (see `svf_factorization._constant`).
        value = np.ascontiguousarray(value, np.float32)
        return self.add_weight(
            name=name, shape=value.shape, trainable=False, dtype="float32", autocast=False,
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(value, dtype))

    def _build_svf_adapters(self):
        """Called at the end of `build()`: the adapters named in the config."""
        names, active = self._svf_pending_adapters
        for name in names:
            self._add_adapter_copy(name)
        state = self._svf_adapter_state
        state.active = active
        if names and active is None:
            for variable in self._svf_adapted_variables():
                variable.trainable = False

    def _add_adapter_copy(self, name):
        state = self._svf_adapter_state
        locked = self._tracker.locked  # False inside build(), True after
        self._tracker.unlock()
        try:
            if not state.base:
                state.base = {v.name: self._svf_copy(f"svf_base__{v.name}",
                                                     ops.convert_to_numpy(v))
                              for v in self._svf_adapted_variables()}
            state.adapters[name] = {
                key: self._svf_copy(f"svf_adapter_{name}__{key}", ops.convert_to_numpy(base))
                for key, base in state.base.items()}
        finally:
            if locked:
                self._tracker.lock()

    def _svf_adapter_variables(self):
        """The base and adapter copies in a fixed order (the order they are saved in)."""
        state = self._svf_adapter_state
        return list(state.base.values()) + [
            v for name in state.adapters for v in state.adapters[name].values()]

    @property
    def adapter_names(self):
        """The layer's adapters, in the order they were added."""
        return list(self._svf_adapter_state.adapters)

    @property
    def active_adapter(self):
        """The adapter the layer computes with, or None (the base, or no adapters)."""
        return self._svf_adapter_state.active

    def _check_adapter(self, name, owner):
        if name not in self._svf_adapter_state.adapters:
            raise ValueError(
                f"{owner}: layer '{self.name}' has no adapter {name!r} (it has "
                f"{self.adapter_names}); add it first with add_adapter.")

    def _sync_active_adapter(self):
        state = self._svf_adapter_state
        if state.active is not None:
            for variable in self._svf_adapted_variables():
                state.adapters[state.active][variable.name].assign(_copy(variable))

    def _assign_active(self, source, trainable):
        for variable in self._svf_adapted_variables():
            variable.assign(_copy(source[variable.name]))
            variable.trainable = trainable

    def base_matches_fingerprint(self):
        """Whether the current factors still compose the base kernel (full rank only)."""
        # Imported here: svf_factorization imports this module.
        from svf_tf.layers.svf_factorization import fingerprint, fingerprints_match

        matrix = ops.convert_to_numpy(self.svf_folded_kernel())
        bias = ops.convert_to_numpy(self.bias) if self.use_bias else None
        return fingerprints_match(fingerprint(matrix, bias),
                                  ops.convert_to_numpy(self.svf_base_fingerprint))

    def check_can_add_adapter(self, name):
        """Raises the error `add_adapter(name)` would raise, changing nothing."""
        check_adapter_name(name)
        if not self.built:
            raise ValueError(f"add_adapter: layer '{self.name}' is not built; build it first.")
        if name in self._svf_adapter_state.adapters:
            raise ValueError(
                f"add_adapter: layer '{self.name}' already has an adapter {name!r}; "
                "delete_adapter it first or pick another name.")
        full_rank = self.svf_rank == min(self._svf_matrix_shape)
        if not self._svf_adapter_state.adapters and full_rank \
                and not self.base_matches_fingerprint():
            raise ValueError(
                f"add_adapter: layer '{self.name}' no longer computes its base kernel (its "
                "factors were trained); add adapters to a fresh apply_svf model, then load "
                "trained factors with load_svf_weights(model, file, adapter=name).")

    def add_adapter(self, name):
        """Adds an adapter equal to the base; it is not made active (see `set_adapter`)."""
        self.check_can_add_adapter(name)
        self._add_adapter_copy(name)

    def set_adapter(self, name):
        """Makes `name` the adapter the layer computes with and trains."""
        self._check_adapter(name, "set_adapter")
        if name != self._svf_adapter_state.active:
            self._sync_active_adapter()
            self._assign_active(self._svf_adapter_state.adapters[name], trainable=True)
            self._svf_adapter_state.active = name

    def disable_adapter(self):
        """Back to the base factors (frozen) until `set_adapter`; adapters are kept."""
        state = self._svf_adapter_state
        if state.adapters and state.active is not None:
            self._sync_active_adapter()
            self._assign_active(state.base, trainable=False)
            state.active = None

    def delete_adapter(self, name):
        """Removes an adapter; deleting the active one disables adapters first.

        Deleting the last adapter leaves a plain SVF layer on its base factors.
        """
        self._check_adapter(name, "delete_adapter")
        state = self._svf_adapter_state
        if state.active == name:
            self.disable_adapter()
        for variable in state.adapters.pop(name).values():
            self._untrack_variable(variable)
        if not state.adapters:
            for variable in self._svf_adapted_variables():
                variable.trainable = True
            for variable in state.base.values():
                self._untrack_variable(variable)
            state.base = {}

    def adapter_values(self, name):
        """{factor variable name: NumPy array} of adapter `name` (current values)."""
        self._check_adapter(name, "adapter_values")
        self._sync_active_adapter()
        return {key: ops.convert_to_numpy(v)
                for key, v in self._svf_adapter_state.adapters[name].items()}

    def base_values(self):
        """{factor variable name: NumPy array} of the base the adapters start from."""
        if not self._svf_adapter_state.adapters:
            self._sync_active_adapter()
            return {v.name: ops.convert_to_numpy(v) for v in self._svf_adapted_variables()}
        return {key: ops.convert_to_numpy(v) for key, v in self._svf_adapter_state.base.items()}

    def set_adapter_values(self, name, values):
        """Assigns {factor variable name: array} to adapter `name` (and to the layer if active)."""
        self._check_adapter(name, "set_adapter_values")
        slot = self._svf_adapter_state.adapters[name]
        for key, value in values.items():
            slot[key].assign(value)
        if self._svf_adapter_state.active == name:
            self._assign_active(slot, trainable=True)

    def _svf_adapter_config(self):
        if self.built:
            names, active = list(self._svf_adapter_state.adapters), self.active_adapter
        else:  # from_config, before build: the adapters it was given
            names, active = self._svf_pending_adapters
        return {"adapters": list(names), "active_adapter": active} if names else {}
