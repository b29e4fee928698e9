"""BAM on tiny stand-in backbones: ensemble, base learner, two backbones, saving."""

import keras
import numpy as np
import pytest

from svf_tf.heads.bam import build_bam_model
from svf_tf.heads.pspnet import build_pspnet_model
from tests.helpers import assert_keras_file_round_trip
from tests.models.fake_backbone import fake_backbone
from tests.models.model_checks import (
    activate_kshot_weighting,
    assert_gradients_reach,
    make_episode,
    training_step,
)


@pytest.fixture(scope="module")
def backbones():
    keras.utils.set_random_seed(0)
    return fake_backbone("resnet", "svf"), fake_backbone("resnet", "freeze", name="base_bb")


@pytest.mark.parametrize("layout", ["resnet", "vgg"])
@pytest.mark.parametrize("shot", [1, 5])
def test_svf_forward_step_and_gradient_reach(layout, shot):
    meta_backbone = fake_backbone(layout, "svf")
    base_backbone = fake_backbone(layout, "freeze", name="base_bb")
    model = build_bam_model(meta_backbone, shot, base_backbone=base_backbone)
    activate_kshot_weighting(model)
    batch = make_episode(shot, batch=2)
    losses, outputs, _, variables, grads = training_step(model, "bam", batch)
    assert outputs["logits"].shape == outputs["meta_logits"].shape == (2, 33, 33, 2)
    assert outputs["base_logits"].shape == (2, 33, 33, 16)
    assert set(losses) == {"loss", "main_loss", "meta_loss", "base_loss"}
    assert np.isfinite(float(losses["loss"]))
    learner = model.get_layer("learner_base")
    assert not learner.trainable_variables
    assert_gradients_reach(model, "bam", variables, grads, backbone=meta_backbone, svf=True,
                           shot=shot, frozen=(learner, base_backbone))


def test_a_trainable_backbone_needs_an_explicit_base_backbone(backbones):
    with pytest.raises(ValueError, match=r"'stage2_conv/svf_s'.* base_backbone="):
        build_bam_model(backbones[0], 1)
    shared = build_bam_model(backbones[0], 1, base_backbone=backbones[0])
    names = [layer.name for layer in shared.layers]
    assert "fake_backbone" not in names  # the meta learner's layer4 output is reused


def test_frozen_backbone_feeds_both_learners(backbones):
    frozen = backbones[1]
    model = build_bam_model(frozen, 2)
    activate_kshot_weighting(model)
    _, _, _, variables, grads = training_step(model, "bam", make_episode(2))
    assert_gradients_reach(model, "bam", variables, grads, backbone=frozen, svf=False, shot=2,
                           frozen=(model.get_layer("learner_base"),))


def test_final_logits_at_init_are_the_meta_probabilities(backbones):
    model = build_bam_model(*backbones[:1], 1, base_backbone=backbones[1])
    probe = keras.Model(model.inputs, [model.get_layer("ensemble").output,
                                       model.get_layer("cls_meta").output])
    final, meta_logits = probe(make_episode(1))
    # gram_merge = cls_merge = [1, 0] at init (BAM): final = softmax(meta).
    np.testing.assert_allclose(final, keras.ops.softmax(meta_logits), rtol=1e-6)
    ensemble = model.get_layer("ensemble")
    np.testing.assert_array_equal(ensemble.gram_merge.numpy(), [1, 0])
    np.testing.assert_array_equal(ensemble.cls_merge.numpy(), [1, 0])


def test_base_learner_weights_come_from_stage1_and_stay_separate(backbones):
    meta_backbone, base_backbone = backbones
    stage1 = build_pspnet_model(fake_backbone("resnet", "full", name="stage1_bb"), 16)
    head = stage1.get_layer("pspnet_head")
    model = build_bam_model(meta_backbone, 1, base_backbone=base_backbone, base_learner=head)
    learner = model.get_layer("learner_base")
    for a, b in zip(learner.get_weights(), head.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert learner is not head and head.trainable and not learner.trainable
    with pytest.raises(ValueError, match="1 \\+ num_base_classes = 61"):
        build_bam_model(meta_backbone, 1, base_backbone=base_backbone, base_learner=head,
                        num_base_classes=60)


def test_training_excludes_the_episode_class_from_the_base_map(backbones):
    model = build_bam_model(backbones[0], 1, base_backbone=backbones[1])
    model.get_layer("ensemble").cls_merge.assign([1.0, 1.0])
    batch = make_episode(1, batch=2)
    with pytest.raises(ValueError, match=r"class_slot values \[15\]"):
        model({**batch, "class_slot": np.array([0, 15], np.int32)}, training=True)
    for layer in model._flatten_layers():  # dropout off, to compare two training-mode calls
        if isinstance(layer, keras.layers.SpatialDropout2D):
            layer.rate = 0.0
    first = model({**batch, "class_slot": np.array([0, 0], np.int32)}, training=True)
    second = model({**batch, "class_slot": np.array([0, 5], np.int32)}, training=True)
    np.testing.assert_array_equal(first["logits"][0], second["logits"][0])
    assert np.abs(np.asarray(first["logits"][1]) - np.asarray(second["logits"][1])).max() > 0
    np.testing.assert_array_equal(first["logits"][1, ..., 1], second["logits"][1, ..., 1])


def test_empty_support_masks_give_finite_outputs_and_gradients(backbones):
    model = build_bam_model(backbones[0], 2, base_backbone=backbones[1])
    activate_kshot_weighting(model)
    losses, outputs, _, _, grads = training_step(model, "bam",
                                                 make_episode(2, empty_supports=True))
    assert np.isfinite(float(losses["loss"]))
    assert all(np.isfinite(np.asarray(o)).all() for o in outputs.values())
    assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)


def test_keras_file_round_trip(backbones, tmp_path):
    model = build_bam_model(backbones[0], 2, base_backbone=backbones[1])
    loaded = assert_keras_file_round_trip(model, make_episode(2, batch=2),
                                          tmp_path / "bam.keras")
    assert not loaded.get_layer("learner_base").trainable
