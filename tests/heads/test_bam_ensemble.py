"""BAM's ensemble against NumPy."""

import keras
import numpy as np
import pytest

from svf_tf.heads.bam_ensemble import BAMEnsemble
from tests.helpers import assert_config_round_trip


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


def test_config_and_keras_file(tmp_path, ensemble_inputs):
    assert_config_round_trip(BAMEnsemble(60, name="ensemble"))
    ins = [keras.Input((None, None, 2)), keras.Input((None, None, 16)), keras.Input((1,)),
           keras.Input((), dtype="int32")]
    layer = BAMEnsemble(15, name="ensemble")
    model = keras.Model(ins, layer(ins))
    layer.gram_merge.assign([0.5, 0.5])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(ensemble_inputs), model(ensemble_inputs))
