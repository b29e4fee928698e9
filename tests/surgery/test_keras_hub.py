"""apply_svf on KerasHub image backbones (random weights, nothing downloaded)."""

import numpy as np
import pytest
from keras.ops import convert_to_numpy

import svf_tf

keras_hub = pytest.importorskip("keras_hub")

X = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")


def small_resnet():
    # The smallest ResNet KerasHub builds: a stem and two basic-block stacks.
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 128],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(32, 32, 3))


def test_resnet_backbone_takes_svf_adapters_and_merges_back(tmp_path):
    backbone = small_resnet()
    model = svf_tf.apply_svf(backbone, filters=r"^stack1_")
    assert [row.path for row in svf_tf.svf_summary(model).rows] == [
        "stack1_block0_1_conv", "stack1_block0_0_conv", "stack1_block0_2_conv"]
    np.testing.assert_allclose(convert_to_numpy(model(X)), convert_to_numpy(backbone(X)), rtol=1e-5,
                               atol=1e-5)
    svf_tf.add_adapter(model, "a")
    svf_tf.set_adapter(model, "a")
    layer = model.get_layer("stack1_block0_2_conv")
    layer.svf_s.assign(layer.svf_s.numpy() * 1.5)
    path = svf_tf.save_svf_weights(model, tmp_path / "a.svf.npz")
    other = svf_tf.apply_svf(backbone, filters=r"^stack1_")
    svf_tf.load_svf_weights(other, path)
    np.testing.assert_array_equal(convert_to_numpy(other(X)), convert_to_numpy(model(X)))
    np.testing.assert_allclose(convert_to_numpy(svf_tf.merge_svf(model)(X)),
                               convert_to_numpy(model(X)), rtol=1e-5, atol=1e-5)


def test_vit_backbone_is_refused_naming_the_hidden_layers():
    # ViT's Conv2D/Dense/EinsumDense sit inside subclassed layers (patching,
    # encoder blocks, attention), out of clone_model's reach.
    vit = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=1,
                                       num_heads=2, hidden_dim=32, mlp_dim=64)
    with pytest.raises(ValueError, match="'vit_patching_and_embedding/patch_embedding'\\) sit "
                                         "inside subclassed layers"):
        svf_tf.apply_svf(vit)
