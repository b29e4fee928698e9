"""The factorisation shared by `SVFConv2D` and `SVFDense`.

A pretrained kernel, folded to a matrix M of shape (fan_in, units) (for a conv
kernel in Keras' HWIO layout, fan_in = kh*kw*Ci), is decomposed once as

    M = V diag(S) U^T,   V: (fan_in, R),  S: (R,),  U: (units, R)

which is the paper's W' = U S V^T (W' is M transposed, up to a permutation of
columns that SVD does not see), so U, S and V keep the paper's names and
roles: V is the "decouple" conv, S the scaling, U the 1x1 projection
(SVF paper, section 3.2 and Algorithm 1).

`SVFFactorization` is a mixin for a Keras layer that has a kernel; it owns the
option checks, the decomposition, the factor weights, the composed kernel and
the (de)serialisation of the weights.
"""

import numpy as np
from keras import ops

from svf_tf.constants import SVF_COMPUTE_MODES, SVF_FACTORS, SVF_PARAMETRIZATIONS
from svf_tf.layers.parallel_svd import full_svd
from svf_tf.layers.svf_adapter_mixing import SVFAdapterMixing

FACTORS = SVF_FACTORS
PARAMETRIZATIONS = SVF_PARAMETRIZATIONS
COMPUTE_MODES = SVF_COMPUTE_MODES

# Defaults of every SVF layer and of `apply_svf`. compute=None resolves to
# "factored" (to "kernel" for grouped convolutions, which "factored" cannot
# express): with only S training it needs no kernel gradient, so a training
# step costs 0.66-0.77x a plain trainable conv at ResNet50 conv4/conv5 shapes,
# against 0.92-1.03x for "kernel" (scripts/benchmark.py, layer section).
DEFAULTS = {"trainable_factors": ("S",), "parametrization": "direct", "rank_multiple": 1,
            "compute": None}
#: The SVF options every SVF layer (and `apply_svf`) accepts.
SVF_OPTIONS = tuple(DEFAULTS)

# Length of the base-kernel fingerprint kept with every SVF layer: the norm of
# the kernel, six random bilinear projections of it, and the norm of the bias.
FINGERPRINT_SIZE = 8


def check_svf_options(trainable_factors, parametrization, rank_multiple, compute):
    """Validates and normalises the SVF options shared by every SVF layer.

    Returns:
        (trainable_factors as a sorted tuple of "U"/"S"/"V", parametrization,
        rank_multiple, compute).

    Raises:
        ValueError: naming the bad value and what is accepted.
    """
    given = trainable_factors
    if isinstance(trainable_factors, str):  # "US" means ("U", "S")
        trainable_factors = tuple(trainable_factors) if set(trainable_factors) <= set(
            FACTORS) else (trainable_factors,)
    try:
        factors = tuple(trainable_factors or ())
    except TypeError:  # not a collection, e.g. trainable_factors=1
        factors = ()
    unknown = [f for f in factors if f not in FACTORS]
    if not factors or unknown:
        raise ValueError(
            f"trainable_factors={given!r} is not accepted: give a non-empty "
            f"subset of {FACTORS}, e.g. ('S',) for the paper's SVF or ('U', 'S', 'V') "
            "for Table 7's all-subspace row.")
    factors = tuple(f for f in FACTORS if f in factors)
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(
            f"parametrization={parametrization!r} is not accepted: use 'direct' "
            "(S itself trains, as the authors' code) or 'exp' (S = S0 * exp(s'), "
            "paper Appendix D).")
    if isinstance(rank_multiple, bool) or not isinstance(rank_multiple, (int, np.integer)) \
            or rank_multiple < 1:
        raise ValueError(
            f"rank_multiple={rank_multiple!r} is not accepted: use a positive integer; 1 "
            "keeps the exact full rank, 4 reproduces the reference code's rounding.")
    if compute is not None and compute not in COMPUTE_MODES:
        raise ValueError(
            f"compute={compute!r} is not accepted: use 'kernel' (compose "
            "U diag(S) V^T and run one op) or 'factored' (the paper's Algorithm 1: "
            "V op, scale by S, U 1x1 op), or None for the default.")
    return factors, parametrization, int(rank_multiple), compute


def check_svf_option_names(owner, options):
    """Raises a ValueError if `options` holds a keyword that is not an SVF option.

    Args:
        owner: the function or class taking the options, for the message.
        options: the keyword arguments given.
    """
    unknown = sorted(set(options) - set(SVF_OPTIONS))
    if unknown:
        raise ValueError(
            f"{owner}: unknown option(s) {unknown}; the SVF options are "
            f"{', '.join(SVF_OPTIONS)}.")


def check_svf_kwargs(owner, options):
    """Validates SVF keyword options given to `owner` (names, then values).

    Unset options take `DEFAULTS`. Returns the normalised options as a dict,
    as `check_svf_options` returns them.
    """
    check_svf_option_names(owner, options)
    return dict(zip(SVF_OPTIONS, check_svf_options(**{**DEFAULTS, **options}), strict=True))


def svf_rank(fan_in: int, units: int, rank_multiple: int) -> int:
    """Rank kept: the full rank, floored to a multiple of `rank_multiple`.

    With rank_multiple=4 this is the reference `round_to_nearest`: floor to a
    multiple of 4, clamped to [1, full rank] (the RGB stem conv goes 27 -> 24).
    """
    full = min(fan_in, units)
    return max(1, min(full, (full // rank_multiple) * rank_multiple))


def decompose(matrix, rank: int):
    """SVD of a folded kernel in float64 on the CPU.

    Args:
        matrix: array of shape (fan_in, units).
        rank: number of singular triplets to keep.

    Returns:
        float32 numpy arrays (u, s, v) with matrix ~= v @ diag(s) @ u.T,
        u: (units, rank), s: (rank,) descending, v: (fan_in, rank). Signs are
        fixed so that the largest-magnitude entry of each column of u is
        positive, which makes the factors reproducible across SVD backends.
    """
    s, left, right = full_svd(matrix)
    s, v, u = s[:rank], left[:, :rank], right[:, :rank]
    pivot = np.abs(u).argmax(axis=0)
    signs = np.sign(u[pivot, np.arange(rank)])
    signs[signs == 0] = 1.0
    return (u * signs).astype(np.float32), s.astype(np.float32), (v * signs).astype(np.float32)


def fingerprint(matrix, bias=None) -> np.ndarray:
    """A short, sign- and basis-independent summary of a base kernel.

    The same kernel always gives the same numbers (to float rounding), a
    different kernel almost surely does not; it does not depend on how an SVD
    chose signs, so adapters stay loadable across machines.
    """
    matrix = np.asarray(matrix, np.float64)
    rng = np.random.default_rng(20220601)
    left = rng.standard_normal((6, matrix.shape[0])) / np.sqrt(matrix.shape[0])
    right = rng.standard_normal((6, matrix.shape[1])) / np.sqrt(matrix.shape[1])
    projections = np.einsum("ki,ij,kj->k", left, matrix, right)
    bias_norm = 0.0 if bias is None else float(np.linalg.norm(np.asarray(bias, np.float64)))
    return np.concatenate(
        [[np.linalg.norm(matrix)], projections, [bias_norm]]).astype(np.float32)


def fingerprints_match(a, b) -> bool:
    """Whether two fingerprints describe the same base kernel (float tolerance)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(abs(a[0]), abs(b[0]), 1e-12)
    return bool(np.all(np.abs(a[:-1] - b[:-1]) <= 1e-4 * scale)
                and abs(a[-1] - b[-1]) <= 1e-4 * max(abs(a[-1]), abs(b[-1]), 1e-12))


def _constant(value):
    """A Keras initializer returning a fixed array (shape-checked).

    The array is made row-major (C-contiguous) first. Under PyTorch a variable
    keeps the strides of the NumPy array it starts from (`torch.as_tensor`),
    and `torch.linalg.svd` returns its left singular vectors column-major
    (LAPACK's layout), which `decompose` turns into V. Without this, a freshly
    decomposed layer's `svf_v` is column-major while the same layer loaded
    from a `.keras` file (row-major placeholders, then `load_own_variables`)
    is row-major: equal values, but matmul sums in another order, so the
    outputs differ by a few float32 ulps (up to ~5e-7). TensorFlow and JAX
    always copy into their own row-major buffers: nothing changes there.
    """
    value = np.ascontiguousarray(value)

    def initializer(shape, dtype=None):
        if tuple(shape) != value.shape:
            raise ValueError(f"internal: factor of shape {value.shape} for a weight {shape}")
        return ops.convert_to_tensor(value, dtype=dtype)

    return initializer


class SVFFactorization(SVFAdapterMixing):
    """Mixin: the SVD factors of a layer's kernel as Keras weights.

    The host class is a Keras layer with a kernel and an optional `bias`; it
    calls `_init_svf` in its constructor, `_build_svf` from `build()` and
    `_build_svf_adapters` at the end of `build()`, and reads the composed
    kernel through `svf_folded_kernel()`. Named adapters: `SVFAdapterSlots`;
    their mixes: `SVFAdapterMixing`.
    """

    def _init_svf(self, trainable_factors, parametrization, rank_multiple, compute,
                  default_compute="factored", adapters=None, active_adapter=None,
                  mixing_adapters=None):
        (self.trainable_factors, self.parametrization, self.rank_multiple,
         self.compute) = check_svf_options(trainable_factors, parametrization, rank_multiple,
                                           compute)
        self.compute = self.compute or default_compute
        # Set by `from_conv`/`from_dense` before build: the pretrained kernel
        # and bias to decompose. Without it, build decomposes a kernel drawn
        # from `kernel_initializer` (a layer made from scratch).
        self._svf_seed = None
        # True only inside `build_from_config`: the saved factors are about to
        # be loaded, so build makes placeholders instead of decomposing.
        self._svf_restoring = False
        self._init_svf_adapters(adapters, active_adapter)
        self._init_svf_mixing(mixing_adapters)

    def build_from_config(self, config):
        # Keras calls this when deserialising (`keras.saving.load_model`), right
        # before `load_own_variables` overwrites every factor: decomposing a
        # random kernel here would only waste an SVD per layer (~25 s for an
        # SVF ResNet50 on 2 CPU cores).
        self._svf_restoring = True
        try:
            super().build_from_config(config)
        finally:
            self._svf_restoring = False

    def _build_svf(self, kernel_shape, fan_in, units):
        """Creates U, S (or S0 and s'), V and the base fingerprint."""
        self.svf_rank = svf_rank(fan_in, units, self.rank_multiple)
        self._svf_kernel_shape = tuple(kernel_shape)
        self._svf_matrix_shape = (int(fan_in), int(units))
        bias = None
        if self._svf_seed is None and self._svf_restoring:
            # Placeholders of the right shapes; `load_own_variables` fills them.
            rank = self.svf_rank
            u, s, v = (np.zeros(shape, np.float32)
                       for shape in ((units, rank), (rank,), (fan_in, rank)))
            base_fingerprint = np.zeros(FINGERPRINT_SIZE, np.float32)
        else:
            if self._svf_seed is not None:
                kernel, bias = self._svf_seed
                self._svf_seed = None
            else:
                kernel = ops.convert_to_numpy(self.kernel_initializer(kernel_shape, "float32"))
            matrix = self._svf_fold(np.asarray(kernel, np.float64))
            u, s, v = decompose(matrix, self.svf_rank)
            base_fingerprint = fingerprint(matrix, bias)

        def factor(name, value, trainable):
            # float32 and never autocast: under mixed precision the factors
            # keep full precision and the composed kernel is cast once.
            return self.add_weight(name=name, shape=value.shape, initializer=_constant(value),
                                   trainable=trainable, dtype="float32", autocast=False)

        self.svf_u = factor("svf_u", u, "U" in self.trainable_factors)
        if self.parametrization == "direct":
            self.svf_s = factor("svf_s", s, "S" in self.trainable_factors)
            self.svf_s0 = self.svf_s_prime = None
        else:
            self.svf_s0 = factor("svf_s0", s, False)
            self.svf_s_prime = factor("svf_s_prime", np.zeros_like(s),
                                      "S" in self.trainable_factors)
            self.svf_s = None
        self.svf_v = factor("svf_v", v, "V" in self.trainable_factors)
        self.svf_base_fingerprint = factor("svf_base_fingerprint", base_fingerprint, False)
        return bias

    def _svf_fold(self, kernel):
        """A NumPy kernel in the layer's layout folded to (fan_in, units).

        A plain reshape for Conv2D/Dense; `SVFEinsumDense` transposes first.
        """
        return np.reshape(kernel, self._svf_matrix_shape)

    def _svf_unfold(self, matrix):
        """The inverse of `_svf_fold` for a (fan_in, units) tensor."""
        return ops.reshape(matrix, self._svf_kernel_shape)

    @property
    def singular_values(self):
        """The effective singular values S (float32, shape (R,))."""
        mixed = self._mixed_parameter()  # learned mixing of adapters, else None
        if self.parametrization == "direct":
            return mixed if mixed is not None else ops.convert_to_tensor(self.svf_s)
        s_prime = mixed if mixed is not None else ops.convert_to_tensor(self.svf_s_prime)
        return ops.multiply(ops.convert_to_tensor(self.svf_s0), ops.exp(s_prime))

    def svf_folded_kernel(self):
        """V diag(S) U^T: the kernel folded to (fan_in, units), float32."""
        scaled_v = ops.multiply(ops.convert_to_tensor(self.svf_v), self.singular_values)
        return ops.matmul(scaled_v, ops.transpose(ops.convert_to_tensor(self.svf_u)))

    @property
    def kernel(self):
        """The composed kernel in the layer's usual layout and compute dtype."""
        if not self.built:
            raise AttributeError("You must build the layer before accessing `kernel`.")
        return ops.cast(self._svf_unfold(self.svf_folded_kernel()), self.compute_dtype)

    @property
    def svf_trainable_variables(self):
        """The variables holding trainable factors (what an adapter file stores)."""
        return [v for v in self._svf_variables() if v.trainable]

    def _svf_variables(self):
        """Factor variables in a fixed order (the order of the saved weights)."""
        names = ["svf_u", "svf_s", "svf_s0", "svf_s_prime", "svf_v", "svf_base_fingerprint"]
        return [getattr(self, n) for n in names if getattr(self, n, None) is not None]

    def _svf_saved_variables(self):
        return (self._svf_variables() + ([self.bias] if self.use_bias else [])
                + self._svf_adapter_variables())

    def save_own_variables(self, store):
        # Keras' Conv/Dense save a merged kernel; SVF keeps its factors.
        if not self.built:
            return
        self._sync_active_adapter()
        for i, variable in enumerate(self._svf_saved_variables()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        if not self.built:
            return
        variables = self._svf_saved_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects {len(variables)} saved "
                f"variables ({[v.name for v in variables]}) but the file has "
                f"{len(store.keys())}. The file was written by a layer with other SVF "
                "options (parametrization, bias) or by a plain layer.")
        for i, variable in enumerate(variables):
            value = store[str(i)]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Layer '{self.name}': saved '{variable.name}' has shape {value.shape}, "
                    f"the layer has {tuple(variable.shape)} (different rank_multiple or "
                    "kernel size?).")
            variable.assign(value)

    def _svf_config(self):
        return {
            "trainable_factors": list(self.trainable_factors),
            "parametrization": self.parametrization,
            "rank_multiple": self.rank_multiple,
            "compute": self.compute,
            **self._svf_adapter_config(),
        }

    def enable_lora(self, *args, **kwargs):
        raise ValueError(
            f"Layer '{self.name}' is an SVF layer: LoRA cannot be added on top of it. "
            "Call svf_tf.merge_svf(model) first, or apply LoRA instead of SVF.")

    def quantize(self, *args, **kwargs):
        raise ValueError(
            f"Layer '{self.name}' is an SVF layer and cannot be quantized directly. "
            "Call svf_tf.merge_svf(model) first, then quantize the merged model.")

    @classmethod
    def _seeded_from(cls, source, options, input_shape):
        """A built SVF layer equal to the plain, built Keras layer `source`.

        The new layer takes `source`'s config (without its LoRA keys: a
        LoRA-enabled kernel is read merged) and the SVF `options`, is
        trainable whatever `source.trainable` says, and is built on
        `input_shape` from `source`'s float kernel and bias.

        Raises:
            ValueError: `source` is quantized or has a kernel regularizer or
                constraint; one line naming the layer and the fix.
        """
        mode = getattr(source, "quantization_mode", None)
        if mode is not None:
            raise ValueError(
                f"{type(source).__name__} '{source.name}' is quantized ({mode!r}); SVF needs "
                "the float kernel. Apply SVF before quantizing.")
        cls._check_no_kernel_extras(source.name, source.kernel_regularizer,
                                    source.kernel_constraint, None)
        config = source.get_config()
        for key in ("lora_rank", "lora_alpha"):
            config.pop(key, None)
        config["trainable"] = True
        config.update(options)
        layer = cls._from_source_config(config)
        bias = getattr(source, "bias", None)
        layer._svf_seed = (ops.convert_to_numpy(source.kernel),
                           None if bias is None else ops.convert_to_numpy(bias))
        layer.build(input_shape)
        return layer

    @classmethod
    def _from_source_config(cls, config):
        """`cls.from_config(config)`, re-raising our own ValueError unwrapped.

        Keras' `from_config` turns any constructor error into a TypeError
        that starts with the whole layer config; the option checks of the
        constructor are user errors and keep their one-line message.
        """
        try:
            return cls.from_config(config)
        except TypeError as error:
            if isinstance(error.__context__, ValueError):
                raise error.__context__ from None
            raise

    @staticmethod
    def _check_no_kernel_extras(layer_name, kernel_regularizer, kernel_constraint, lora_rank):
        for arg, value in (("kernel_regularizer", kernel_regularizer),
                           ("kernel_constraint", kernel_constraint), ("lora_rank", lora_rank)):
            if value is not None:
                raise ValueError(
                    f"{layer_name}: {arg}={value!r} cannot be used with SVF, which replaces "
                    f"the kernel by its factors; remove {arg} (weight decay on the singular "
                    "values belongs in the optimizer).")

