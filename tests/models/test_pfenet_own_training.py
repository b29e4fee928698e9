"""PFENet as its own code trains it: COCO fractional bins and batch-statistics backbone BN.

Built by name through `build_fsss_model`, trained one step, saved as
`.keras` and exported as a SavedModel: the two options must survive all of it.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.backbones import TorchBatchNormalization
from svf_tf.export.saved_model import export_fsss_model
from svf_tf.models.build_model import build_fsss_model
from tests.helpers import assert_keras_file_round_trip
from tests.models.model_checks import make_episode, training_step

COCO_BINS = (1.0, 0.5, 0.25, 0.125)  # PFENet config/coco/*.yaml `ppm_scales`


@pytest.fixture(scope="module")
def model():
    return build_fsss_model("pfenet", "resnet50", 1, pyramid_bins=COCO_BINS,
                            backbone_options={"backbone_bn": "batch_stats"})


def _backbone_norms(model):
    parts = [model.get_layer(f"resnet50_backbone_{part}") for part in ("trunk", "layer4")]
    return {layer.name: layer for part in parts for layer in part.layers
            if isinstance(layer, keras.layers.BatchNormalization)}


def test_training_step_updates_backbone_statistics_but_trains_only_the_head(model):
    norms = _backbone_norms(model)
    assert len(norms) == 55 and {type(bn) for bn in norms.values()} == {TorchBatchNormalization}
    before = {name: bn.moving_variance.numpy().copy() for name, bn in norms.items()}
    backbone_ids = {id(v) for bn in norms.values() for v in bn.weights}
    assert not backbone_ids & {id(v) for v in model.trainable_variables}
    batch = make_episode(1, batch=2, size=65)
    losses, outputs, *_ = training_step(model, "pfenet", batch)
    assert np.isfinite(float(losses["loss"]))
    assert [a.shape for a in outputs["aux_logits"]] == [(2, 65, 65, 2)] * 4
    unchanged = [name for name, bn in norms.items()
                 if np.array_equal(bn.moving_variance.numpy(), before[name])]
    assert unchanged == []


@pytest.mark.slow
def test_keras_file_and_saved_model_keep_both_options(model, tmp_path):
    batch = make_episode(1, batch=1, size=65)
    loaded = assert_keras_file_round_trip(model, batch, tmp_path / "pfenet.keras")
    assert loaded.get_layer("fem").pyramid_bins == COCO_BINS
    assert {type(bn) for bn in _backbone_norms(loaded).values()} == {TorchBatchNormalization}

    export_fsss_model(model, str(tmp_path / "saved_model"))
    exported = tf.saved_model.load(str(tmp_path / "saved_model"))
    # 65 and 73 px: 9x9 and 10x10 features, bins 9/4/2/1 and 10/5/2/1 cells at run time.
    for size in (65, 73):
        episode = make_episode(1, batch=1, size=size, seed=size)
        expected = model(episode, training=False)
        actual = exported.serve(tf.constant(episode["query_image"]),
                       tf.constant(episode["support_images"]),
                       tf.constant(episode["support_masks"], tf.float32))
        np.testing.assert_allclose(actual["logits"], expected["logits"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(actual["aux_logits_3"], expected["aux_logits"][3],
                                   rtol=1e-4, atol=1e-5)
