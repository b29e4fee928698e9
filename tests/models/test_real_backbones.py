"""Every head x real backbone x {1, 5} shots: forward, training step, gradient reach.

The backbones are `build_backbone(..., weights=None)` at 33x33 inputs, shared by
the session (see conftest.py); every head model is built fresh.
"""

import keras
import numpy as np
import pytest

from svf_tf.models.build_model import METHODS, build_fsss_model
from tests.models.model_checks import (
    activate_kshot_weighting,
    assert_gradients_reach,
    make_episode,
    training_step,
)

BACKBONES = ("resnet50", "vgg16")


def check_step(model, method, shot, backbone, svf, frozen=()):
    activate_kshot_weighting(model)
    batch = make_episode(shot, batch=1, size=33)
    losses, outputs, _, variables, grads = training_step(model, method, batch)
    assert outputs["logits"].shape == (1, 33, 33, 2)
    assert np.isfinite(outputs["logits"].numpy()).all()
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert_gradients_reach(model, method, variables, grads, backbone=backbone, svf=svf,
                           shot=shot, train_down_query=False, frozen=frozen)


@pytest.mark.slow
@pytest.mark.parametrize("shot", [1, 5])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", BACKBONES)
def test_svf_backbone(backbones, name, method, shot):
    svf = backbones(name, "svf")
    options, frozen = {}, ()
    if method == "bam":
        # BAM + SVF: the untouched frozen copy feeds the base learner.
        options["base_backbone"] = backbones(name, "freeze")
    model = build_fsss_model(method, svf, shot, **options)
    if method == "bam":
        frozen = (model.get_layer("learner_base"), options["base_backbone"])
    check_step(model, method, shot, svf, True, frozen)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", BACKBONES)
def test_frozen_backbone(backbones, name, method):
    frozen_backbone = backbones(name, "freeze")
    model = build_fsss_model(method, frozen_backbone, 1)
    frozen = (model.get_layer("learner_base"),) if method == "bam" else ()
    check_step(model, method, 1, frozen_backbone, False, frozen)


@pytest.mark.slow
def test_empty_supports_with_a_real_svf_backbone(backbones):
    svf = backbones("vgg16", "svf")
    model = build_fsss_model("bam", svf, 5, base_backbone=backbones("vgg16", "freeze"))
    batch = make_episode(5, empty_supports=True)
    losses, outputs, _, _, grads = training_step(model, "bam", batch)
    assert all(np.isfinite(np.asarray(o)).all() for o in outputs.values())
    assert np.isfinite(float(losses["loss"]))
    assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)


@pytest.mark.slow
def test_keras_file_round_trip_with_a_real_svf_backbone(backbones, tmp_path):
    model = build_fsss_model("pfenet", backbones("vgg16", "svf"), 1)
    batch = make_episode(1, batch=2)
    expected = model(batch)
    model.save(tmp_path / "pfenet_vgg16_svf.keras")
    loaded = keras.saving.load_model(tmp_path / "pfenet_vgg16_svf.keras")
    actual = loaded(batch)
    np.testing.assert_array_equal(actual["logits"], expected["logits"])
    assert sorted(v.path for v in loaded.trainable_variables) == sorted(
        v.path for v in model.trainable_variables)
