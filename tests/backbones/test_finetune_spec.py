"""FinetuneSpec: defaults per mode, the paper's ablation rows, validation."""

import dataclasses

import pytest

from svf_tf.backbones import FinetuneSpec


def test_svf_default_is_the_papers_setting():
    spec = FinetuneSpec("svf")
    assert spec.stages == (2, 3, 4)
    assert spec.svf_stages == (0, 1, 2, 3, 4)
    assert spec.svf_factors == ("S",)
    assert (spec.svf_rank_multiple, spec.svf_parametrization) == (4, "direct")
    assert spec.train_bn is False
    assert spec.first_trainable_stage == 2
    assert [spec.decomposes(s) for s in range(5)] == [True] * 5
    assert [spec.trains_conv(s, "3x3") for s in range(5)] == [False, False, True, True, True]
    assert not any(spec.trains_bn(s) for s in range(5))


def test_freeze_trains_nothing_and_cuts_after_every_stage():
    spec = FinetuneSpec()
    assert spec.mode == "freeze" and spec.stages == ()
    assert spec.first_trainable_stage == 5
    assert not any(spec.trains_conv(s, k) or spec.trains_bn(s) or spec.decomposes(s)
                   for s in range(5) for k in ("1x1", "3x3"))


@pytest.mark.parametrize("spec,convs,bns", [
    # Table 4: BN only; BN + S.
    (FinetuneSpec("bn"), set(), {2, 3, 4}),
    (FinetuneSpec("svf", train_bn=True), {2, 3, 4}, {2, 3, 4}),
    # Table 5: full fine-tuning; part fine-tuning of layer 4.
    (FinetuneSpec("full"), {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}),
    (FinetuneSpec("part", stages=(1, 2, 3, 4)), {1, 2, 3, 4}, set()),
    (FinetuneSpec("part", stages=4), {4}, set()),
    # Tables 8/17.
    (FinetuneSpec("svf", stages=(3, 4)), {3, 4}, set()),
    (FinetuneSpec("svf", stages=[4, 1, 2, 3, 3]), {1, 2, 3, 4}, set()),
])
def test_ablation_rows_map_to_stages(spec, convs, bns):
    assert {s for s in range(5) if spec.trains_conv(s, "3x3")} == convs
    assert {s for s in range(5) if spec.trains_bn(s)} == bns
    assert spec.first_trainable_stage == min(convs | bns)


def test_conv_kinds_table6():
    only3 = FinetuneSpec("part", conv_kinds="3x3")
    assert only3.conv_kinds == ("3x3",)
    assert only3.trains_conv(2, "3x3") and not only3.trains_conv(2, "1x1")
    only1 = FinetuneSpec("part", conv_kinds=["1x1"])
    assert only1.trains_conv(4, "1x1") and not only1.trains_conv(4, "3x3")


def test_svf_factors_table7_are_normalised():
    assert FinetuneSpec("svf", svf_factors=("V", "U")).svf_factors == ("U", "V")
    assert FinetuneSpec("svf", svf_factors="S").svf_factors == ("S",)


def test_from_option_and_immutability():
    spec = FinetuneSpec.from_option("svf")
    assert spec == FinetuneSpec("svf")
    assert FinetuneSpec.from_option(spec) is spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.mode = "full"
    with pytest.raises(ValueError, match="finetune=3"):
        FinetuneSpec.from_option(3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(mode="lora"), "mode='lora'"),
    (dict(mode="freeze", stages=(2,)), "freeze"),
    (dict(mode="svf", stages=()), "trains nothing"),
    (dict(mode="svf", stages=(5,)), r"stages=\(5,\)"),
    (dict(mode="part", stages=("layer2",)), "layer2"),
    (dict(mode="part", stages=True), "True"),
    (dict(mode="part", conv_kinds=("5x5",)), "5x5"),
    (dict(mode="bn", conv_kinds=("1x1",)), "conv_kinds"),
    (dict(mode="freeze", train_bn=True), "mode='bn'"),
    (dict(mode="bn", train_bn=False), "trains nothing"),
    (dict(mode="part", train_bn="yes"), "train_bn='yes'"),
    (dict(mode="part", svf_factors=("U",)), "only apply to mode='svf'"),
    (dict(mode="svf", svf_factors=("W",)), "W"),
    (dict(mode="svf", svf_factors=()), "svf_factors"),
    (dict(mode="svf", stages=(1, 2), svf_stages=(2, 3, 4)), "svf_stages"),
    (dict(mode="svf", svf_rank_multiple=0), "svf_rank_multiple=0"),
    (dict(mode="svf", svf_parametrization="log"), "'log'"),
    (dict(mode="svf", svf_compute="fast"), "svf_compute='fast'"),
    (dict(mode="part", svf_compute="kernel"), "only apply to mode='svf'"),
])
def test_bad_values_are_rejected_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FinetuneSpec(**kwargs)


@pytest.mark.parametrize("compute", ["kernel", "factored"])
def test_svf_compute_on_a_small_five_stage_model(compute):
    """The in-process version of the VGG16 test below: one 3x3 conv per stage."""
    import keras
    import numpy as np

    from svf_tf import SVFConv2D
    from svf_tf.backbones.apply_finetune import apply_finetune

    image = keras.Input((None, None, 3))
    x, stages = image, {}
    for stage in range(5):
        conv = keras.layers.Conv2D(4, 3, padding="same", name=f"conv{stage}")
        x = conv(x)
        stages[conv.name] = stage
    model = keras.Model(image, x)
    svf = apply_finetune(model, FinetuneSpec("svf", svf_compute=compute, svf_rank_multiple=1),
                         stages)
    layers = {layer.name: layer for layer in svf.layers if isinstance(layer, SVFConv2D)}
    # Stages 2-4 train S in the chosen form; the frozen stages 0-1 compose the kernel.
    assert {name: layer.compute for name, layer in layers.items()} == {
        "conv0": "kernel", "conv1": "kernel", "conv2": compute, "conv3": compute,
        "conv4": compute}
    assert [name for name, layer in layers.items() if layer.trainable] == [
        "conv2", "conv3", "conv4"]
    # 3x3 convs 3 -> 4 and 4 -> 4: rank min(27, 4) = min(36, 4) = 4 singular values each.
    assert sum(int(np.prod(v.shape)) for v in svf.trainable_variables) == 3 * 4
    x = np.random.default_rng(0).normal(size=(1, 9, 9, 3)).astype("float32")
    np.testing.assert_allclose(svf(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # two SVF VGG16s; test_svf_compute_on_a_small_five_stage_model is the small one
def test_svf_compute_reaches_the_trained_svf_layers_and_frozen_ones_run_one_conv():
    import keras
    import numpy as np

    from svf_tf import SVFConv2D
    from svf_tf.backbones import build_backbone

    x = np.random.default_rng(0).normal(size=(1, 33, 33, 3)).astype("float32")
    for compute in ("kernel", "factored"):
        keras.utils.set_random_seed(0)
        backbone = build_backbone("vgg16", input_shape=(33, 33, 3),
                                  finetune=FinetuneSpec("svf", svf_compute=compute,
                                                        svf_rank_multiple=1))
        svf = [layer for layer in backbone.layers if isinstance(layer, SVFConv2D)]
        # Stages 2-4 (block3..block5) train S and use the chosen form; the
        # decomposed but frozen stages 0-1 always compose the kernel.
        assert {layer.compute for layer in svf if layer.trainable} == {compute}
        frozen = [layer for layer in svf if not layer.trainable]
        assert {layer.name.split("_")[0] for layer in frozen} == {"block1", "block2"}
        assert {layer.compute for layer in frozen} == {"kernel"}
        # Either way the untouched SVF backbone computes the plain one (weights=None
        # draws the same kernels under the same seed).
        keras.utils.set_random_seed(0)
        plain = build_backbone("vgg16", input_shape=(33, 33, 3))
        expected, actual = plain(x), backbone(x)
        for name in ("layer0", "layer4"):
            np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="svf_compute='fast'"):
        FinetuneSpec("svf", svf_compute="fast")
    with pytest.raises(ValueError, match="only apply to mode='svf'"):
        FinetuneSpec("part", svf_compute="kernel")
