"""`FrozenBatchNormalization`: BatchNorm that always uses its running statistics."""

import keras


@keras.saving.register_keras_serializable(package="svf_tf")
class FrozenBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that runs in inference mode whatever `training` says.

    The references put every backbone BatchNorm in eval mode after each
    `model.train()` (`fix_bn` in BAM `util/util.py`, applied in `train.py`
    `train`; the SVF code does the same): the running
    mean and variance are used in training and test alike and are never
    updated. Keras' own BatchNormalization does this only while
    `trainable=False`; this subclass does it always, so the paper's Table 4
    rows that *train* the BN affine parameters (gamma, beta) still normalise
    with the frozen running statistics, exactly like PyTorch `fix_bn` plus BN
    parameters in the optimizer.

    `trainable` therefore only says whether gamma and beta train. The moving
    statistics are non-trainable variables and are never assigned.

    Args:
        **kwargs: as `keras.layers.BatchNormalization`. `epsilon` matters when
            weights come from PyTorch (1e-5 there; Keras' ResNet50 uses
            1.001e-5, Keras' default is 1e-3).

    Backbones get theirs from `graph_rewrite.clone_layer(bn,
    cls=FrozenBatchNormalization)`, which keeps the source's weights.

    Example:
    ```python
    bn = FrozenBatchNormalization(epsilon=1e-5)
    x = np.random.rand(4, 8, 8, 16).astype("float32")
    y = bn(x, training=True)  # normalised with moving_mean=0, moving_variance=1
    ```
    """

    def call(self, inputs, training=None, mask=None):
        # `training` is deliberately ignored: statistics are frozen (fix_bn).
        return super().call(inputs, training=False, mask=mask)
