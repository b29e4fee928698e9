"""apply_svf on KerasHub image backbones (random weights, nothing downloaded)."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import svf_tf
from svf_tf.surgery.adapters import svf_layers
from svf_tf.surgery.layer_paths import iter_layers

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


def tiny_vit():
    # Random weights, nothing downloaded: 16 patches of 8x8, one encoder block.
    return keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=1,
                                        num_heads=2, hidden_dim=32, mlp_dim=64)


VIT_SVF = {  # every Conv2D/Dense/EinsumDense of the ViT sits inside a subclassed layer
    "vit_patching_and_embedding/patch_embedding": "SVFConv2D",
    "vit_encoder/transformer_block_1/mha/query": "SVFEinsumDense",
    "vit_encoder/transformer_block_1/mha/key": "SVFEinsumDense",
    "vit_encoder/transformer_block_1/mha/value": "SVFEinsumDense",
    "vit_encoder/transformer_block_1/mha/attention_output": "SVFEinsumDense",
    "vit_encoder/transformer_block_1/mlp/dense_1": "SVFDense",
    "vit_encoder/transformer_block_1/mlp/dense_2": "SVFDense",
}


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_vit_backbone_takes_svf_in_place_and_merges_back():
    vit = tiny_vit()
    plain = numpy(vit(X))  # the plain model's outputs, before SVF
    variable_paths = [v.path for v in vit.weights]
    model = svf_tf.apply_svf(vit)
    assert model is vit  # replaced in place: the ViTBackbone class is kept
    layers = dict(svf_layers(model))
    assert {path: type(layer).__name__ for path, layer in layers.items()} == VIT_SVF
    # Built in the old layers' name scopes: variable paths are the layer paths.
    assert {v.path for path, layer in layers.items() for v in layer.weights} == {
        f"{path}/{name}" for path in VIT_SVF
        for name in ("svf_u", "svf_s", "svf_v", "svf_base_fingerprint", "bias")}
    mha = model.get_layer("vit_encoder").encoder_layers[0].mha
    assert mha._query_dense is layers["vit_encoder/transformer_block_1/mha/query"]
    assert len(model.weights) == 22 + 7 * 3  # kernel -> U, S, V, fingerprint; nothing left over
    # Tolerance: float32 rounding of the factored products (outputs are O(1)).
    np.testing.assert_allclose(numpy(model(X)), plain, rtol=1e-5, atol=1e-5)
    svf_tf.add_adapter(model, "a")  # named adapters reach the nested layers too
    svf_tf.set_adapter(model, "a")
    for layer in layers.values():
        assert [v.name for v in layer.trainable_variables] == ["svf_s"]
        layer.svf_s.assign(numpy(layer.svf_s) * 1.2)
    trained = numpy(model(X))
    assert np.abs(trained - plain).max() > 1e-2
    svf_tf.disable_adapter(model)
    np.testing.assert_allclose(numpy(model(X)), plain, rtol=1e-5, atol=1e-5)
    svf_tf.set_adapter(model, "a")
    merged = svf_tf.merge_svf(model)
    assert merged is model  # merged in place, back to the plain Keras classes
    assert {path: type(layer).__name__ for path, layer in iter_layers(merged)
            if path in VIT_SVF} == {p: c.removeprefix("SVF") for p, c in VIT_SVF.items()}
    assert [v.path for v in merged.weights] == variable_paths
    np.testing.assert_allclose(numpy(merged(X)), trained, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # a training step, two more ViTs and an unmerge SVD (4-8 s on 2 cores)
def test_svf_vit_trains_only_s_and_its_adapter_file_loads_and_unmerges(tmp_path):
    vit = tiny_vit()
    base_weights = vit.get_weights()
    model = svf_tf.apply_svf(vit)
    # Only S trains: freeze the rest of the ViT, one SGD step, only S moves.
    for path, layer in iter_layers(model):
        if path not in VIT_SVF and not layer._layers:
            layer.trainable = False
    model.get_layer("vit_patching_and_embedding").class_token.trainable = False
    assert sorted(v.name for v in model.trainable_variables) == ["svf_s"] * 7
    before = {id(v): numpy(v) for v in model.weights}
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse", run_eagerly=True)
    model.fit(X, np.zeros((2, 17, 32), "float32"), epochs=1, batch_size=2, verbose=0)
    for v in model.weights:
        changed = not np.array_equal(numpy(v), before[id(v)])
        assert changed == (v.name == "svf_s"), v.path

    # Adapter file: loads into a fresh SVF ViT on the same base weights.
    path = svf_tf.save_svf_weights(model, tmp_path / "vit.svf.npz")
    assert [e["path"] for e in svf_tf.read_adapter_header(path)["layers"]] == list(VIT_SVF)
    other = tiny_vit()
    other.set_weights(base_weights)
    other = svf_tf.apply_svf(other)
    svf_tf.load_svf_weights(other, path)
    trained = numpy(model(X))
    np.testing.assert_array_equal(numpy(other(X)), trained)

    # Merge, then unmerge from the file: the SVF ViT again.
    merged = svf_tf.merge_svf(model)
    unmerged = svf_tf.unmerge_svf(merged, path)
    assert {p: type(layer).__name__ for p, layer in svf_layers(unmerged)} == VIT_SVF
    np.testing.assert_allclose(numpy(unmerged(X)), trained, rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # three ViT builds and a .keras save (3-5 s on 2 cores)
def test_svf_vit_keras_file_needs_apply_svf_before_loading_weights(tmp_path):
    # ViTBackbone's config rebuilds its sublayers as plain Conv2D/Dense/
    # EinsumDense in build(), so a .keras file of the SVF ViT cannot load the
    # SVF factors into them; the weights load into a ViT that apply_svf made.
    model = svf_tf.apply_svf(tiny_vit())
    expected = numpy(model(X))
    model.save(tmp_path / "svf_vit.keras")
    with pytest.raises(ValueError, match="'patch_embedding' expected 2 variables, but received 5"):
        keras.saving.load_model(tmp_path / "svf_vit.keras")
    model.save_weights(tmp_path / "svf_vit.weights.h5")
    rebuilt = svf_tf.apply_svf(keras_hub.models.ViTBackbone.from_config(model.get_config()))
    rebuilt.load_weights(tmp_path / "svf_vit.weights.h5")
    np.testing.assert_array_equal(numpy(rebuilt(X)), expected)
