"""The non-parametric evaluation against NumPy: PFENet's prior, thresholded, scored (Table 2)."""

import keras
import numpy as np
import pytest

from svf_tf.bcpt.prior_evaluation import ShotMean, build_prior_model, make_prior_predict_fn
from svf_tf.metrics.evaluation import evaluate_episodes
from tests.helpers import run_layer_test

SIZE = 17  # the toy backbone's grid: pixels 0, 8, 16
RNG = np.random.default_rng(3)
A3 = RNG.standard_normal((3, 4)).astype("float32")
A4 = RNG.standard_normal((4, 5)).astype("float32")


def toy_backbone():
    """layer2: the image at every 8th pixel; layer3: x A3; layer4: ReLU(layer3 A4)."""
    image = keras.Input((None, None, 3))
    layer2 = keras.layers.MaxPooling2D(1, strides=8, name="sample")(image)
    layer3 = keras.layers.Conv2D(4, 1, use_bias=False, name="l3")(layer2)
    layer4 = keras.layers.Conv2D(5, 1, use_bias=False, activation="relu", name="l4")(layer3)
    model = keras.Model(image, {"layer2": layer2, "layer3": layer3, "layer4": layer4})
    model.get_layer("l3").set_weights([A3[None, None]])
    model.get_layer("l4").set_weights([A4[None, None]])
    return model


def np_resize_align_corners(x, size):
    """Bilinear, align_corners=True, of a [h, w] array to [size, size]."""
    def axis_weights(n):
        pos = np.arange(size) * (n - 1) / (size - 1)
        lo = np.minimum(np.floor(pos).astype(int), n - 2)
        frac = pos - lo
        m = np.zeros((size, n))
        m[np.arange(size), lo] += 1 - frac
        m[np.arange(size), lo + 1] += frac
        return m
    return axis_weights(x.shape[0]) @ x @ axis_weights(x.shape[1]).T


def np_prior_mask(query, supports, masks, threshold):
    """PFENet's prior in NumPy (shots averaged), at the image size, then thresholded."""
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    q4 = relu(query[::8, ::8] @ A3 @ A4).reshape(-1, 5)
    priors = []
    for support, mask in zip(supports, masks, strict=True):
        m3 = mask[::8, ::8][..., None]  # align-corners 17 -> 3 lands on pixels 0, 8, 16
        s4 = (relu((support[::8, ::8] @ A3 * m3) @ A4) * m3).reshape(-1, 5)
        cos = (s4 @ q4.T) / (np.linalg.norm(s4, axis=1)[:, None]
                             * np.linalg.norm(q4, axis=1)[None] + 1e-7)
        prior = cos.max(axis=0)
        priors.append((prior - prior.min()) / (prior.max() - prior.min() + 1e-7))
    prior = np.mean(priors, axis=0).reshape(3, 3)
    return np_resize_align_corners(prior, SIZE) > threshold


def np_iou(pred, label):
    return [((pred == c) & (label == c)).sum() / ((pred == c) | (label == c)).sum()
            for c in (0, 1)]


@pytest.mark.parametrize("shot, threshold", [(1, 0.5), (2, 0.3)])
def test_prior_mask_and_its_score_match_numpy(shot, threshold):
    query = RNG.random((SIZE, SIZE, 3)).astype("float32")
    supports = RNG.random((shot, SIZE, SIZE, 3)).astype("float32")
    masks = np.zeros((shot, SIZE, SIZE), np.float32)
    masks[:, :9, :9] = 1
    masks[-1, 8:, 8:] = 1
    label = np.zeros((SIZE, SIZE), np.int32)
    label[4:13, 2:15] = 1
    expected = np_prior_mask(query, supports, masks, threshold)
    assert 0 < expected.sum() < expected.size  # the threshold cuts somewhere
    predict = make_prior_predict_fn(build_prior_model(toy_backbone(), shot), threshold)
    logits = predict(query[None], supports[None], masks[None]).numpy()
    np.testing.assert_array_equal(logits[0].argmax(-1), expected)
    episode = {"query_image": query[None], "support_images": supports[None],
               "support_masks": masks[None], "class_slot": np.array([0]),
               "original_mask": label[None]}
    report = evaluate_episodes(predict, [episode], 1, verbose=0)
    background, foreground = np_iou(expected.astype(int), label)
    assert report["miou"] == pytest.approx(foreground, abs=1e-6)
    assert report["fb_iou"] == pytest.approx((background + foreground) / 2, abs=1e-6)


def test_shot_mean_layer_averages_each_episodes_shots():
    x = RNG.standard_normal((6, 2, 3, 4)).astype("float32")  # 2 episodes x 3 shots
    _, (mean,) = run_layer_test(lambda: ShotMean(3, name="shots"), x, expected_trainable=0,
                                expected_non_trainable=0, expected_output_shapes=(2, 2, 3, 4))
    np.testing.assert_allclose(mean, [x[:3].mean(0), x[3:].mean(0)], rtol=1e-6, atol=1e-6)
