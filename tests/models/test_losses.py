"""Losses: masked cross entropy and each method's terms."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.models.losses import (
    bam_loss,
    baseline_loss,
    fsss_loss,
    masked_cross_entropy,
    pfenet_loss,
)


def numpy_ce(logits, labels):
    """CrossEntropyLoss(ignore_index=255): mean over non-ignored pixels, float64."""
    logits = logits.astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels != 255
    picked = np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    return -(picked * valid).sum() / valid.sum()


@pytest.fixture
def logits_and_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 5, 2)).astype("float32")
    labels = rng.integers(0, 2, size=(2, 5, 5))
    labels[0, :2] = 255
    return logits, labels


def test_masked_cross_entropy_matches_numpy(logits_and_labels):
    logits, labels = logits_and_labels
    np.testing.assert_allclose(masked_cross_entropy(logits, labels), numpy_ce(logits, labels),
                               rtol=1e-5)


def test_probability_valued_logits_are_not_softmaxed_twice():
    probs = np.array([[[[0.9, 0.1]]]], "float32")
    expected = -np.log(np.exp(0.9) / (np.exp(0.9) + np.exp(0.1)))
    np.testing.assert_allclose(masked_cross_entropy(probs, np.array([[[0]]])), expected,
                               rtol=1e-5)


def test_all_ignored_gives_zero_not_nan(logits_and_labels):
    logits, _ = logits_and_labels
    labels = np.full((2, 5, 5), 255)
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = masked_cross_entropy(logits, labels)
    assert float(loss) == 0.0
    np.testing.assert_array_equal(tape.gradient(loss, logits), 0.0)


def test_bad_labels(logits_and_labels):
    logits, labels = logits_and_labels
    labels = labels.copy()
    labels[1, 0, 0] = 2
    with pytest.raises(ValueError, match=r"0..1 and 255 .* got values \[2\]"):
        masked_cross_entropy(logits, labels)
    with pytest.raises(ValueError, match=r"Labels \(2, 4, 4\)"):
        masked_cross_entropy(logits, labels[:, :4, :4])

    @tf.function
    def in_graph(logits, labels):
        return masked_cross_entropy(logits, labels)

    with pytest.raises(tf.errors.InvalidArgumentError, match="0..1 and 255"):
        in_graph(logits, labels)


def test_method_losses(logits_and_labels):
    logits, labels = logits_and_labels
    rng = np.random.default_rng(1)
    aux = [rng.normal(size=logits.shape).astype("float32") for _ in range(4)]
    main = numpy_ce(logits, labels)
    aux_mean = np.mean([numpy_ce(a, labels) for a in aux])

    out = baseline_loss({"logits": logits}, labels)
    np.testing.assert_allclose(out["loss"], main, rtol=1e-5)

    out = pfenet_loss({"logits": logits, "aux_logits": aux}, labels, aux_weight=0.5)
    np.testing.assert_allclose(out["loss"], main + 0.5 * aux_mean, rtol=1e-5)
    np.testing.assert_allclose(out["aux_loss"], aux_mean, rtol=1e-5)

    base_logits = rng.normal(size=(2, 5, 5, 16)).astype("float32")
    base_labels = rng.integers(0, 16, size=(2, 5, 5))
    outputs = {"logits": logits, "meta_logits": aux[0], "base_logits": base_logits}
    out = bam_loss(outputs, labels, base_labels)
    expected = main + numpy_ce(aux[0], labels) + numpy_ce(base_logits, base_labels)
    np.testing.assert_allclose(out["loss"], expected, rtol=1e-5)
    assert "base_loss" not in bam_loss(outputs, labels)

    batch = {"query_mask": labels, "query_base_mask": base_labels}
    np.testing.assert_allclose(fsss_loss("bam", outputs, batch)["loss"], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="method='psp'"):
        fsss_loss("psp", outputs, batch)
