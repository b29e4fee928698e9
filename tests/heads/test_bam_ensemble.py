"""BAM's ensemble against NumPy."""

import numpy as np
import pytest

from svf_tf.heads.bam_ensemble import BAMEnsemble
from tests.helpers import run_layer_test


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_ensemble(meta_logits, base_logits, est, slot, gram, cls, training):
    meta, base = softmax(meta_logits), softmax(base_logits)
    keep = np.ones(base.shape[-1])
    keep[0] = 0
    base_map = []
    for b in range(len(meta)):
        k = keep.copy()
        if training:
            k[slot[b] + 1] = 0
        base_map.append((base[b] * k).sum(-1, keepdims=True))
    base_map = np.stack(base_map)
    e = est.reshape(-1, 1, 1, 1)
    bg = gram[0] * meta[..., :1] + gram[1] * e
    fg = gram[0] * meta[..., 1:] + gram[1] * e
    return np.concatenate([cls[0] * bg + cls[1] * base_map, fg], -1)


@pytest.fixture
def ensemble_inputs():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(2, 4, 4, 2)).astype("float32"),
            rng.normal(size=(2, 4, 4, 16)).astype("float32"),
            rng.uniform(size=(2, 1)).astype("float32"), np.array([0, 7], np.int32)]


@pytest.mark.parametrize("training", [True, False])
def test_matches_numpy(ensemble_inputs, training):
    layer = BAMEnsemble(15)
    layer(ensemble_inputs)
    layer.gram_merge.assign([0.8, 0.3])
    layer.cls_merge.assign([0.6, -0.4])
    out = layer(ensemble_inputs, training=training).numpy()
    expected = numpy_ensemble(*ensemble_inputs, [0.8, 0.3], [0.6, -0.4], training)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_initial_weights_give_the_meta_probabilities(ensemble_inputs):
    layer = BAMEnsemble(15)
    out = layer(ensemble_inputs, training=True).numpy()
    np.testing.assert_array_equal(layer.gram_merge.numpy(), [1, 0])
    np.testing.assert_array_equal(layer.cls_merge.numpy(), [1, 0])
    np.testing.assert_allclose(out, softmax(ensemble_inputs[0]), rtol=1e-6)


def test_bad_class_slot_and_channels(ensemble_inputs):
    layer = BAMEnsemble(15)
    bad = ensemble_inputs[:3] + [np.array([0, 15], np.int32)]
    with pytest.raises(ValueError, match=r"class_slot values \[15\] are outside \[0, 15\)"):
        layer(bad, training=True)
    layer(bad, training=False)  # unused at inference
    with pytest.raises(ValueError, match="expected 1 \\+ num_base_classes = 61"):
        BAMEnsemble(60)(ensemble_inputs)


def test_layer_harness(ensemble_inputs):
    def factory():
        layer = BAMEnsemble(15, name="ensemble")
        layer.build([(None, None, None, 2), (None, None, None, 16), (None, 1), (None,)])
        layer.gram_merge.assign([0.5, 0.5])
        return layer

    # gram_merge and cls_merge: two bias-free 1x1 convs 2 -> 1.
    _, (out,) = run_layer_test(factory, ensemble_inputs, expected_trainable=2,
                               expected_non_trainable=0, expected_params=(4, 0),
                               expected_output_shapes=(2, 4, 4, 2))
    expected = numpy_ensemble(*ensemble_inputs, [0.5, 0.5], [1.0, 0.0], training=False)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
