"""PFENet on a tiny stand-in backbone: outputs, auxiliary losses, gradients, saving."""

import keras
import numpy as np
import pytest

from svf_tf.heads.pfenet import build_pfenet_model
from svf_tf.models.losses import pfenet_loss
from tests.helpers import assert_keras_file_round_trip
from tests.models.fake_backbone import fake_backbone
from tests.models.model_checks import assert_gradients_reach, make_episode, training_step

SMALL_BINS = (6, 3, 0.5)


@pytest.fixture(scope="module")
def svf_backbone():
    keras.utils.set_random_seed(0)
    return fake_backbone("resnet", "svf")


@pytest.mark.parametrize("layout", ["resnet", "vgg"])
@pytest.mark.parametrize("shot", [1, 5])
def test_forward_step_and_gradient_reach(layout, shot):
    backbone = fake_backbone(layout, "svf")
    model = build_pfenet_model(backbone, shot, pyramid_bins=SMALL_BINS)
    batch = make_episode(shot, batch=2)
    losses, outputs, _, variables, grads = training_step(model, "pfenet", batch)
    assert outputs["logits"].shape == (2, 33, 33, 2)
    assert [a.shape for a in outputs["aux_logits"]] == [(2, 33, 33, 2)] * 3
    assert np.isfinite(float(losses["loss"])) and float(losses["aux_loss"]) > 0
    assert_gradients_reach(model, "pfenet", variables, grads, backbone=backbone, svf=True,
                           shot=shot)


def test_default_bins_are_the_svf_codes(svf_backbone):
    model = build_pfenet_model(svf_backbone, 1)
    assert model.get_layer("fem").pyramid_bins == (60, 30, 15, 8)
    outputs = model(make_episode(1))
    assert len(outputs["aux_logits"]) == 4
    losses = pfenet_loss(outputs, make_episode(1)["query_mask"])
    np.testing.assert_allclose(float(losses["loss"]),
                               float(losses["main_loss"]) + float(losses["aux_loss"]), rtol=1e-6)


def test_mean_reduction_and_bad_options(svf_backbone):
    model = build_pfenet_model(svf_backbone, 2, pyramid_bins=SMALL_BINS)
    assert model.get_layer("kshot_prior").mode == "mean"
    assert model.get_layer("down_query").trainable
    with pytest.raises(ValueError, match="pyramid_bins"):
        build_pfenet_model(svf_backbone, 1, pyramid_bins=[60, 0])
    with pytest.raises(ValueError, match="kshot_reduce"):
        build_pfenet_model(svf_backbone, 1, kshot_reduce="max")


def test_input_too_small_for_fractional_bins_raises(svf_backbone):
    model = build_pfenet_model(svf_backbone, 1, pyramid_bins=(1.0, 0.125))
    with pytest.raises(ValueError, match=r"pyramid bin 0.125 .* too small"):
        model(make_episode(1, size=33))


def test_empty_support_masks_give_finite_outputs_and_gradients(svf_backbone):
    model = build_pfenet_model(svf_backbone, 2, pyramid_bins=SMALL_BINS)
    batch = make_episode(2, empty_supports=True)
    losses, outputs, _, _, grads = training_step(model, "pfenet", batch)
    assert np.isfinite(float(losses["loss"]))
    assert all(np.isfinite(np.asarray(o)).all() for o in [outputs["logits"],
                                                          *outputs["aux_logits"]])
    assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)


def test_keras_file_round_trip(svf_backbone, tmp_path):
    model = build_pfenet_model(svf_backbone, 2, pyramid_bins=SMALL_BINS)
    loaded = assert_keras_file_round_trip(model, make_episode(2, batch=2),
                                          tmp_path / "pfenet.keras")
    assert len(loaded(make_episode(2))["aux_logits"]) == len(SMALL_BINS)


def test_coco_fractions_at_641_pool_to_81_40_20_10_cells(svf_backbone):
    """PFENet's own COCO bins: int(81 * f) cells for the 81x81 features of a 641 input."""
    model = build_pfenet_model(svf_backbone, 1, pyramid_bins=(1.0, 0.5, 0.25, 0.125))
    fem = model.get_layer("fem")
    probe = keras.Model(model.inputs, {"query_feat": fem.input[0], "aux": fem.output[1:]})
    batch = make_episode(1, size=641)
    outputs = probe([batch[k] for k in ("query_image", "support_images", "support_masks")])
    assert outputs["query_feat"].shape[1:3] == (81, 81)
    assert [a.shape[1:3] for a in outputs["aux"]] == [(81, 81), (40, 40), (20, 20), (10, 10)]
