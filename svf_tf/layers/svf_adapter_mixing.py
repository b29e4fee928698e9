"""Mixing the named adapters of an SVF layer, with fixed or learned weights.

All adapters of a layer share U and V, so a mix of adapters is again an
adapter: a new vector of singular values. The mix is linear in the trained
parameter:

- parametrization "direct": S = sum_k w_k S_k (linear in S);
- parametrization "exp": s' = sum_k w_k s'_k, i.e. log S = log S0 +
  sum_k w_k (log S_k - log S0), linear in log S. With weights summing to 1
  this is the weighted geometric mean of the adapters' singular values: it
  stays positive whatever the weights, and it mixes the per-direction scale
  factors exp(s'_k) multiplicatively, as the exp parametrization trains them
  (SVF paper, Appendix D).

Weights (1, 0, ...) give the first adapter exactly in both cases.

Learned mixing is Transformer-squared's few-shot adaptation (Sun, Cetin and
Tang, "Transformer-Squared: Self-adaptive LLMs", arXiv:2501.06252, section
3.2: an adapted vector z' = sum_k alpha_k z_k with K coefficients alpha
searched on a few examples): here the K weights of each layer are a trainable
variable (`svf_mix_weights`) over a frozen bank of the K adapters
(`svf_mix_bank`), trained by gradient descent like any Keras weight; every
other factor is frozen meanwhile. `freeze_adapter_mixing` turns the learned
mix into an ordinary adapter.
"""

import numpy as np
from keras import ops

from svf_tf.layers.svf_adapter_slots import SVFAdapterSlots


class SVFAdapterMixing(SVFAdapterSlots):
    """Mixin of `SVFFactorization`: mixes of adapters (see the module docstring)."""

    def _init_svf_mixing(self, mixing_adapters):
        self._svf_pending_mixing = list(mixing_adapters or [])
        self.svf_mix_bank = self.svf_mix_weights = None

    @property
    def mixing_adapters(self):
        """The adapters whose mixing weights train now, or [] when not mixing."""
        return list(self._svf_mixing_names) if self.svf_mix_bank is not None else []

    def _adapter_parameter_name(self, owner):
        if tuple(self.trainable_factors) != ("S",):
            raise ValueError(
                f"{owner}: layer '{self.name}' trains {list(self.trainable_factors)}; adapters "
                "mix only when S alone trains (U and V must be shared); apply SVF with "
                "trainable_factors=('S',).")
        return "svf_s" if self.parametrization == "direct" else "svf_s_prime"

    def check_can_mix(self, weights, owner="mix_adapters"):
        """Raises the error mixing `weights` ({name: weight}) would raise, changing nothing."""
        self._adapter_parameter_name(owner)
        if not isinstance(weights, dict) or not weights:
            raise ValueError(
                f"{owner}: weights={weights!r} is not accepted: give a non-empty dict "
                "{adapter name: weight}, e.g. {'a': 0.5, 'b': 0.5}.")
        for name, weight in weights.items():
            self._check_adapter(name, owner)
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) \
                    or not np.isfinite(weight):
                raise ValueError(
                    f"{owner}: the weight of {name!r} is {weight!r}; give a finite number.")
        self._check_not_mixing(owner)

    def mixed_adapter_values(self, weights):
        """{factor variable name: array} of the mix of adapters `weights` ({name: weight})."""
        self.check_can_mix(weights)
        key = self._adapter_parameter_name("mix_adapters")
        mixed = sum(np.float64(weight) * self.adapter_values(name)[key].astype(np.float64)
                    for name, weight in weights.items())
        return {key: mixed.astype(np.float32)}

    def _mixed_parameter(self):
        """sum_k w_k bank_k (S or s'), or None when not learning a mix."""
        if self.svf_mix_bank is None:
            return None
        return ops.matmul(ops.convert_to_tensor(self.svf_mix_weights),
                          ops.convert_to_tensor(self.svf_mix_bank))

    def _add_mixing_variables(self, names, weights):
        key = self._adapter_parameter_name("learn_adapter_mixing")
        state = self._svf_adapter_state
        bank = np.stack([ops.convert_to_numpy(state.adapters[n][key]) for n in names])
        locked = self._tracker.locked
        self._tracker.unlock()
        try:
            self.svf_mix_bank = self._svf_copy("svf_mix_bank", bank)
            weights = np.asarray(weights, np.float32)
            self.svf_mix_weights = self.add_weight(
                name="svf_mix_weights", shape=weights.shape, trainable=True, dtype="float32",
                autocast=False,
                initializer=lambda shape, dtype=None: ops.convert_to_tensor(weights, dtype))
        finally:
            if locked:
                self._tracker.lock()
        self._svf_mixing_names = list(names)
        for variable in self._svf_adapted_variables():
            variable.trainable = False

    def _build_svf_mixing(self):
        """Called at the end of `build()`, after the adapters: a mix named in the config."""
        names = self._svf_pending_mixing
        if names:
            self.check_can_mix(dict.fromkeys(names, 1.0), "learn_adapter_mixing")
            self._add_mixing_variables(names, np.full(len(names), 1.0 / len(names)))

    def learn_adapter_mixing(self, names, initial_weights=None):
        """Computes with sum_k w_k adapter_k, the K weights `svf_mix_weights` training.

        Args:
            names: the adapters to mix (K of them).
            initial_weights: K numbers; default 1/K each.
        """
        names = list(names)
        initial = (np.full(len(names), 1.0 / max(len(names), 1)) if initial_weights is None
                   else np.asarray(initial_weights, np.float64))
        if initial.shape != (len(names),):
            raise ValueError(
                f"learn_adapter_mixing: {len(names)} adapters {names} but initial_weights has "
                f"shape {initial.shape}; give one weight per adapter.")
        self.check_can_mix(dict(zip(names, initial.tolist(), strict=True)),
                           "learn_adapter_mixing")
        self._sync_active_adapter()
        self._add_mixing_variables(names, initial)

    def freeze_adapter_mixing(self, name):
        """Stores the learned mix as adapter `name` and makes it the active adapter."""
        if self.svf_mix_bank is None:
            raise ValueError(
                f"freeze_adapter_mixing: layer '{self.name}' is not learning a mix; call "
                "learn_adapter_mixing first.")
        self.check_can_add_adapter(name)
        key = self._adapter_parameter_name("freeze_adapter_mixing")
        values = {key: ops.convert_to_numpy(self._mixed_parameter())}
        for variable in (self.svf_mix_bank, self.svf_mix_weights):
            self._untrack_variable(variable)
        self.svf_mix_bank = self.svf_mix_weights = None
        self._add_adapter_copy(name)
        self.set_adapter_values(name, values)
        self._svf_adapter_state.active = None  # so set_adapter copies the mix in
        self.set_adapter(name)

    # The adapter operations, extended to the mix.

    def _build_svf_adapters(self):
        super()._build_svf_adapters()
        self._build_svf_mixing()

    def _svf_adapter_variables(self):
        mixing = [] if self.svf_mix_bank is None else [self.svf_mix_bank, self.svf_mix_weights]
        return super()._svf_adapter_variables() + mixing

    def _svf_adapter_config(self):
        names = self.mixing_adapters if self.built else self._svf_pending_mixing
        return {**super()._svf_adapter_config(), **({"mixing_adapters": names} if names else {})}

    def _check_not_mixing(self, owner):
        if self.svf_mix_bank is not None:
            raise ValueError(
                f"{owner}: layer '{self.name}' is learning a mix of {self.mixing_adapters}; "
                "call freeze_adapter_mixing(name) first.")

    def set_adapter(self, name):
        self._check_not_mixing("set_adapter")
        super().set_adapter(name)

    def disable_adapter(self):
        self._check_not_mixing("disable_adapter")
        super().disable_adapter()

    def delete_adapter(self, name):
        self._check_not_mixing("delete_adapter")
        super().delete_adapter(name)
