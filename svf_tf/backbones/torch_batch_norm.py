"""`TorchBatchNormalization`: BatchNorm with PyTorch's train/eval behaviour."""

import keras
from keras import ops

# PyTorch's BatchNorm2d momentum 0.1 in Keras' convention (the weight of the
# old value): moving = 0.9 * moving + 0.1 * batch.
TORCH_BN_MOMENTUM = 0.9
_MOVING_STATISTICS = ("moving_mean", "moving_variance")


@keras.saving.register_keras_serializable(package="svf_tf")
class TorchBatchNormalization(keras.layers.BatchNormalization):
    """BatchNorm that behaves like PyTorch's `nn.BatchNorm2d`, whether or not it trains.

    PFENet's own training (PFENet `train.py` `train`) calls only
    `model.train()` and runs the frozen backbone under `torch.no_grad()`
    (PFENet `model/PFENet.py`, `PFENet.forward`): its BatchNorm layers
    normalise with the statistics of the batch and update their running
    statistics, while gamma/beta never change. Keras' BatchNormalization
    runs in inference mode whenever `trainable=False`, so it cannot express
    that; this subclass decouples the two:

    - `training=True`: normalise with the batch mean and biased variance,
      and update `moving_mean` / `moving_variance` with PyTorch's rule,
      `moving = momentum * moving + (1 - momentum) * batch`, where the
      batch variance of the update is the *unbiased* one (n / (n - 1) times
      the biased, n = values per channel). Default momentum 0.9 (PyTorch's
      0.1).
    - `training=False` (or None): normalise with the moving statistics.
    - `trainable` only says whether gamma and beta train. With
      `trainable=True` the layer is ordinary PyTorch BN training (gradients
      flow through the batch statistics).

    Under `tf.distribute` each replica normalises its own part of the
    batch (PyTorch BN without SyncBatchNorm) and updates its own copy of the
    moving statistics; reading them outside the replicas (evaluation,
    checkpoints, saving) gives the *mean* of the copies (synchronization
    "on_read", aggregation "mean", as Keras' metrics). The update is linear,
    so that mean is exactly what one shared copy updated with the replicas'
    mean statistics would hold; for equal replica batches the moving mean
    gets the whole batch's mean, as one device would compute. Replicas never
    synchronise inside the step, so the layer also runs in an XLA-compiled
    function nested in `strategy.run` (where a cross-replica assignment
    would fail).

    The default of the backbones is `FrozenBatchNormalization` (the `fix_bn`
    of BAM and the SVF authors' code); `build_backbone(...,
    backbone_bn="batch_stats")` uses this layer instead. Both hold the same
    four variables, so weights files load into either.

    Args:
        momentum: Keras-convention momentum (default 0.9, PyTorch's 0.1).
        **kwargs: as `keras.layers.BatchNormalization`; `renorm` and
            `synchronized` are not supported.

    Example:
    ```python
    bn = TorchBatchNormalization(epsilon=1e-5)
    bn.trainable = False                 # gamma/beta frozen ...
    y = bn(x, training=True)             # ... batch statistics, moving ones updated
    ```
    """

    def __init__(self, momentum=TORCH_BN_MOMENTUM, **kwargs):
        for option in ("renorm", "synchronized"):
            if kwargs.get(option):
                raise ValueError(
                    f"TorchBatchNormalization: {option}=True is not supported; use "
                    f"keras.layers.BatchNormalization for {option}.")
        super().__init__(momentum=momentum, **kwargs)

    def add_weight(self, *args, **kwargs):
        name = kwargs.get("name")
        if name not in _MOVING_STATISTICS:
            return super().add_weight(*args, **kwargs)
        # `Layer.add_weight` has no `synchronization`; this is its path for
        # the two (non-trainable, float32) moving statistics.
        with keras.name_scope(self.name, caller=self):
            variable = keras.Variable(
                initializer=keras.initializers.get(kwargs["initializer"]),
                shape=kwargs["shape"], dtype=self.variable_dtype, trainable=False,
                autocast=False, aggregation="mean", synchronization="on_read", name=name)
        self._track_variable(variable)
        return variable

    def call(self, inputs, training=None, mask=None):
        if not training:
            return super().call(inputs, training=False, mask=mask)
        compute_dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, compute_dtype)
        mean, variance = self._moments(x, mask)
        if mask is None:
            count = ops.cast(ops.size(x) // ops.shape(x)[self.axis], compute_dtype)
        else:
            count = ops.sum(ops.cast(mask, compute_dtype))
        # PyTorch's running_var gets the unbiased batch variance.
        unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
        momentum = self.momentum
        self.moving_mean.assign(
            ops.cast(self.moving_mean, compute_dtype) * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            ops.cast(self.moving_variance, compute_dtype) * momentum
            + unbiased * (1.0 - momentum))
        gamma = ops.cast(self.gamma, compute_dtype) if self.scale else None
        beta = ops.cast(self.beta, compute_dtype) if self.center else None
        outputs = ops.batch_normalization(x, mean, variance, axis=self.axis, offset=beta,
                                          scale=gamma, epsilon=self.epsilon)
        return ops.cast(outputs, self.compute_dtype)
