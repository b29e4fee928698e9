"""Dropout2d in the heads: where it sits, its rate, and that it drops whole channels.

PFENet `model/PFENet.py`, BAM `model/BAM.py` and `model/PSPNet.py` (`__init__`):
Dropout2d(0.5) after down_query and down_supp,
Dropout2d(0.1) inside every classifier (cls_meta, PFENet's cls and inner_cls,
PSPNet's cls); PyTorch's Dropout2d zeroes whole channels and scales the rest
by 1 / (1 - p), in training only.
"""

import keras
import numpy as np
import pytest

from svf_tf.heads.bam import build_bam_model
from svf_tf.heads.baseline import build_baseline_model
from svf_tf.heads.classifier_head import ClassifierHead
from svf_tf.heads.pfenet import build_pfenet_model
from tests.models.fake_backbone import fake_backbone
from tests.models.model_checks import make_episode

PROJECTIONS = {"down_query_dropout": 0.5, "down_supp_dropout": 0.5}


def dropout_rates(model):
    """({top-level SpatialDropout2D: rate}, {ClassifierHead: rate}, count of all dropouts)."""
    flat = list(model._flatten_layers(include_self=False, recursive=True))
    top = {layer.name: layer.rate for layer in model.layers
           if isinstance(layer, keras.layers.SpatialDropout2D)}
    heads = {layer.name: layer.drop.rate for layer in flat if isinstance(layer, ClassifierHead)}
    count = sum(isinstance(layer, keras.layers.SpatialDropout2D) for layer in flat)
    return top, heads, count


@pytest.mark.parametrize("method", ["baseline", "pfenet", "bam"])
def test_dropout_layers_and_rates_per_method(method):
    backbone = fake_backbone("resnet", "freeze")
    if method == "baseline":
        model, heads = build_baseline_model(backbone, 1), {"cls_meta": 0.1}
    elif method == "pfenet":
        model = build_pfenet_model(backbone, 1, pyramid_bins=(6, 3))
        heads = {"cls": 0.1, "inner_cls_0": 0.1, "inner_cls_1": 0.1}
    else:
        # learner_base's own classifier ("cls") keeps its Dropout2d(0.1), as in
        # BAM, whose train.py calls model.train() on the whole model.
        model, heads = build_bam_model(backbone, 1), {"cls_meta": 0.1, "cls": 0.1}
    top, found_heads, count = dropout_rates(model)
    assert top == PROJECTIONS
    assert found_heads == heads
    assert count == len(PROJECTIONS) + len(heads)  # no dropout anywhere else


def test_projection_dropout_drops_whole_channels_in_training_only():
    model = build_baseline_model(fake_backbone("resnet", "freeze"), 1, train_down_query=True)
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in
                                       ("down_query", "down_query_dropout", "down_supp",
                                        "down_supp_dropout")])
    batch = make_episode(1, batch=4, size=33)
    query, dropped_query, support, dropped_support = (np.asarray(t) for t in
                                                      probe(batch, training=True))
    for before, after in ((query, dropped_query), (support, dropped_support)):
        assert before.shape[-1] == 256 and before.shape[1] > 1
        # NumPy reference of Dropout2d(0.5): per (sample, channel) all zero or x / 0.5.
        kept = np.abs(after).reshape(after.shape[0], -1, 256).max(axis=1) > 0
        expected = np.where(kept[:, None, None, :], before / 0.5, 0.0)
        np.testing.assert_allclose(after, expected, rtol=1e-6, atol=1e-6)
        live = np.abs(before).reshape(before.shape[0], -1, 256).max(axis=1) > 0
        assert 0.3 < kept[live].mean() < 0.7  # about half of the live channels survive
    query, dropped_query, _, _ = (np.asarray(t) for t in probe(batch, training=False))
    np.testing.assert_array_equal(dropped_query, query)
