"""`StopGradient`: an identity layer that blocks back-propagation."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="svf_tf")
class StopGradient(keras.layers.Layer):
    """Identity in the forward pass, zero gradient in the backward pass.

    `build_backbone` puts one after the last stage that has nothing trainable
    at or before it (e.g. after layer1 for the paper's SVF setting, which
    trains layer2..layer4), so back-propagation never enters stages that
    cannot receive a gradient. That is what the references get from running
    frozen stages under `torch.no_grad()` (PFENet `model/PFENet.py` and BAM
    `model/BAM.py`, `forward`).

    A layer rather than a `Lambda` so that models holding it save and load as
    `.keras` files without `safe_mode=False`.

    Example:
    ```python
    x = keras.Input((8, 8, 3))
    y = StopGradient(name="layer1_stop_gradient")(x)
    ```
    """

    def call(self, inputs):
        return ops.stop_gradient(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape
