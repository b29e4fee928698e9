"""The SVF baseline on a tiny stand-in backbone: outputs, quirks, gradients, saving."""

import keras
import numpy as np
import pytest

from svf_tf.heads.baseline import build_baseline_model
from tests.helpers import assert_keras_file_round_trip
from tests.models.fake_backbone import fake_backbone
from tests.models.model_checks import assert_gradients_reach, make_episode, training_step


@pytest.fixture(scope="module")
def svf_backbone():
    keras.utils.set_random_seed(0)
    return fake_backbone("resnet", "svf")


@pytest.mark.parametrize("layout", ["resnet", "vgg"])
@pytest.mark.parametrize("shot", [1, 5])
def test_forward_step_and_gradient_reach(layout, shot):
    backbone = fake_backbone(layout, "svf")
    model = build_baseline_model(backbone, shot)
    batch = make_episode(shot, batch=2, size=33)
    losses, outputs, _, variables, grads = training_step(model, "baseline", batch)
    assert outputs["logits"].shape == (2, 33, 33, 2)
    assert set(outputs) == {"logits"} and set(losses) == {"loss", "main_loss"}
    assert np.isfinite(float(losses["loss"]))
    assert_gradients_reach(model, "baseline", variables, grads, backbone=backbone, svf=True,
                           shot=shot, train_down_query=False)


def test_down_query_stays_at_its_random_init_unless_asked(svf_backbone):
    model = build_baseline_model(svf_backbone, 1)
    conv = model.get_layer("down_query")
    assert not conv.trainable and conv.kernel.numpy().std() > 0
    before = conv.kernel.numpy().copy()
    training_step(model, "baseline", make_episode(1, size=33), learning_rate=1.0)
    np.testing.assert_array_equal(conv.kernel.numpy(), before)
    trained = build_baseline_model(svf_backbone, 1, train_down_query=True)
    assert trained.get_layer("down_query").trainable


def test_kshot_sum_is_k_times_the_mean(svf_backbone):
    shot = 3
    summed = build_baseline_model(svf_backbone, shot)
    averaged = build_baseline_model(svf_backbone, shot, kshot_reduce="mean")
    averaged.set_weights(summed.get_weights())
    batch = make_episode(shot, size=33)
    # Identical supports: the mean equals one shot, the sum is `shot` times it.
    for key in ("support_images", "support_masks"):
        batch[key] = np.repeat(batch[key][:, :1], shot, axis=1)
    probe = {}
    for name, model in (("sum", summed), ("mean", averaged)):
        probe[name] = keras.Model(model.inputs, [model.get_layer("kshot_prior").output,
                                                 model.get_layer("kshot_prototype").output])
    prior_sum, proto_sum = probe["sum"](batch)
    prior_mean, proto_mean = probe["mean"](batch)
    np.testing.assert_allclose(prior_sum, shot * prior_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proto_sum, shot * proto_mean.numpy(), rtol=1e-5, atol=1e-6)
    assert prior_sum.numpy().max() > 1.5  # a summed 3-shot prior exceeds [0, 1]
    with pytest.raises(ValueError, match="kshot_reduce='weighted'"):
        build_baseline_model(svf_backbone, 1, kshot_reduce="weighted")


def test_empty_support_masks_give_finite_outputs_and_gradients(svf_backbone):
    model = build_baseline_model(svf_backbone, 2)
    batch = make_episode(2, size=33, empty_supports=True)
    losses, outputs, _, _, grads = training_step(model, "baseline", batch)
    assert np.isfinite(outputs["logits"].numpy()).all() and np.isfinite(float(losses["loss"]))
    assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)


def test_keras_file_round_trip(svf_backbone, tmp_path):
    model = build_baseline_model(svf_backbone, 2)
    loaded = assert_keras_file_round_trip(model, make_episode(2, batch=2, size=33),
                                          tmp_path / "baseline.keras")
    assert not loaded.get_layer("down_query").trainable
    assert len(loaded.trainable_variables) == len(model.trainable_variables)
