"""Training augmentation ops against hand-computed cases (BAM `util/transform.py`)."""

import cv2
import numpy as np
import pytest

from svf_tf.data.transforms import train as tt
from svf_tf.data.transforms.presets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRESETS,
    AugmentConfig,
    augment_config,
)

MEAN = np.asarray(IMAGENET_MEAN, np.float32)


def _config(**overrides) -> AugmentConfig:
    """A chain that does nothing random unless overridden: scale 1, no rotate/blur/flip."""
    base = dict(name="t", scale_range=(1.0, 1.0), crop_size=17, test_size=17, rotate_prob=0.0,
                blur_prob=0.0, flip_prob=0.0)
    base.update(overrides)
    return AugmentConfig(**base)


class CountingRng:
    """Stands in for np.random.Generator in rand_crop: offsets 0, counts the draws."""

    def __init__(self):
        self.calls = 0

    def integers(self, low, high, endpoint=False):
        self.calls += 1
        return 0


def test_presets_match_reference_configs():
    assert PRESETS["pascal"].scale_range == (0.9, 1.1) and PRESETS["pascal"].crop_size == 473
    assert PRESETS["coco"].scale_range == (0.8, 1.25) and PRESETS["coco"].crop_size == 641
    assert PRESETS["bam_base_pascal"].scale_range == (0.5, 2.0)
    assert PRESETS["bam_base_pascal"].crop_size == 417
    demo = augment_config("pascal", crop_size=129, test_size=193)
    assert (demo.crop_size, demo.test_size, demo.scale_range) == (129, 193, (0.9, 1.1))
    small = augment_config("pascal", crop_size=65, scale_range=(0.2, 0.3))
    assert (small.crop_size, small.scale_range, small.rotate_range) == (
        65, (0.2, 0.3), PRESETS["pascal"].rotate_range)
    with pytest.raises(ValueError, match=r"scale_range=\(0.3, 0.2\)"):
        augment_config("pascal", scale_range=(0.3, 0.2))


@pytest.mark.parametrize("size", [100, 472, 8, 0])
def test_crop_size_must_be_8k_plus_1(size):
    with pytest.raises(ValueError, match=rf"crop_size={size}.*\(size - 1\) % 8 == 0"):
        augment_config("pascal", crop_size=size)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="'voc'.*bam_base_coco"):
        augment_config("voc")


def test_scale_is_linear_for_image_and_nearest_for_label():
    # 2x upscaling of a 2x2 image with columns 0 and 100: OpenCV's half-pixel
    # centres give source x = (x' + 0.5) / 2 - 0.5, clamped at the border.
    image = np.zeros((2, 2, 3), np.float32)
    image[:, 1] = 100.0
    label = np.array([[1, 2], [3, 255]], np.uint8)
    out_image, (out_label,) = tt.rand_scale(image, [label], np.random.default_rng(0), (2.0, 2.0))
    np.testing.assert_allclose(out_image[0, :, 0], [0.0, 25.0, 75.0, 100.0], atol=1e-4)
    np.testing.assert_array_equal(out_label, np.repeat(np.repeat(label, 2, 0), 2, 1))


def test_scale_matches_direct_cv2_calls_with_the_drawn_factor():
    rng_image = np.random.default_rng(3)
    image = rng_image.uniform(0, 255, (31, 23, 3)).astype(np.float32)
    label = rng_image.integers(0, 3, (31, 23)).astype(np.uint8)
    factor = np.random.default_rng(7).uniform(0.8, 1.25)
    out_image, (out_label,) = tt.rand_scale(image, [label], np.random.default_rng(7), (0.8, 1.25))
    expected_image = cv2.resize(image, None, fx=factor, fy=factor,
                                interpolation=cv2.INTER_LINEAR)
    expected_label = cv2.resize(label, None, fx=factor, fy=factor,
                                interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(out_image, expected_image)
    np.testing.assert_array_equal(out_label, expected_label)


def test_rotate_90_degrees_counter_clockwise_with_border_values():
    # Centre (4, 4) of an 8x8 image; +90 deg maps source (x, y) to (y, 8 - x),
    # so destination row 0 comes from x = 8, outside the image: border.
    label = np.arange(64, dtype=np.uint8).reshape(8, 8)
    image = np.repeat(label[..., None], 3, axis=2).astype(np.float32)
    out_image, (out_label,) = tt.rotate(image, [label], 90.0)
    expected = np.full((8, 8), 255, np.uint8)
    for y_dst in range(1, 8):
        for x_dst in range(8):
            expected[y_dst, x_dst] = label[x_dst, 8 - y_dst]
    np.testing.assert_array_equal(out_label, expected)
    np.testing.assert_allclose(out_image[0], np.broadcast_to(MEAN, (8, 3)), atol=1e-3)
    np.testing.assert_allclose(out_image[1:, :, 0], expected[1:].astype(np.float32), atol=1e-3)


def test_rotate_fills_corners_with_mean_colour_and_255():
    image = np.full((21, 21, 3), 7.0, np.float32)
    label = np.ones((21, 21), np.uint8)
    out_image, (out_label,) = tt.rotate(image, [label], 45.0)
    np.testing.assert_allclose(out_image[0, 0], MEAN, atol=1e-3)
    assert out_label[0, 0] == 255 and out_label[20, 20] == 255
    assert out_label[10, 10] == 1
    np.testing.assert_allclose(out_image[10, 10], [7.0, 7.0, 7.0], atol=1e-4)


def test_rand_rotate_probability_zero_is_identity():
    image = np.random.default_rng(0).uniform(0, 255, (9, 11, 3)).astype(np.float32)
    label = np.ones((9, 11), np.uint8)
    out_image, (out_label,) = tt.rand_rotate(image, [label], np.random.default_rng(0),
                                             (-10.0, 10.0), 0.0)
    assert out_image is image and out_label is label


def test_blur_is_opencvs_5x5_binomial_kernel_and_leaves_labels_alone():
    image = np.random.default_rng(1).uniform(0, 255, (12, 10, 3)).astype(np.float32)
    label = np.random.default_rng(2).integers(0, 2, (12, 10)).astype(np.uint8)
    config = _config(blur_prob=1.0, crop_size=9)
    # With scale 1 and the 9x9 crop at offsets drawn by the same generator, the
    # label must be a plain crop of the input and the image a crop of the blur.
    out_image, (out_label,) = tt.train_transform(image, [label], np.random.default_rng(5), config)
    # With sigma=0 and an odd ksize <= 7, OpenCV takes its fixed table, here
    # [1, 4, 6, 4, 1] / 16 (not exp(-x^2 / 2 sigma^2) with sigma = 1.1, which
    # differs by up to ~3 grey levels); border reflect-101.
    kernel = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)), mode="reflect")
    rows = sum(kernel[i] * padded[i:i + 12] for i in range(5))
    blurred = sum(kernel[i] * rows[:, i:i + 10] for i in range(5))
    found = False
    for top in range(12 - 9 + 1):
        for left in range(10 - 9 + 1):
            crop = blurred[top:top + 9, left:left + 9]
            if np.allclose(tt.normalize(crop), out_image, atol=1e-3):
                np.testing.assert_array_equal(out_label, label[top:top + 9, left:left + 9])
                found = True
    assert found


def test_flip_mirrors_image_and_labels():
    image = np.random.default_rng(0).uniform(0, 255, (5, 6, 3)).astype(np.float32)
    labels = [np.arange(30, dtype=np.uint8).reshape(5, 6), np.eye(5, 6, dtype=np.uint8)]
    out_image, out_labels = tt.rand_hflip(image, labels, np.random.default_rng(0), 1.0)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    for out, label in zip(out_labels, labels, strict=True):
        np.testing.assert_array_equal(out, label[:, ::-1])


@pytest.mark.parametrize("shape,size,expected_border", [
    ((5, 7), 9, (2, 2, 1, 1)),   # pad_h 4 -> top 2 bottom 2; pad_w 2 -> left 1 right 1
    ((6, 4), 9, (1, 2, 2, 3)),   # pad_h 3 -> top 1 bottom 2; pad_w 5 -> left 2 right 3
])
def test_pad_splits_top_pad_over_two(shape, size, expected_border):
    top, bottom, left, right = expected_border
    image = np.full(shape + (3,), 9.0, np.float32)
    label = np.ones(shape, np.uint8)
    out_image, (out_label,) = tt.pad_to(image, [label], size)
    assert out_image.shape == (size, size, 3) and out_label.shape == (size, size)
    inner = (slice(top, size - bottom), slice(left, size - right))
    np.testing.assert_array_equal(out_label[inner], label)
    np.testing.assert_array_equal(out_image[inner], image)
    outer = np.ones((size, size), bool)
    outer[inner] = False
    assert np.all(out_label[outer] == 255)
    np.testing.assert_allclose(out_image[outer], np.broadcast_to(MEAN, (outer.sum(), 3)),
                               atol=1e-4)


def test_crop_retry_keeps_85_percent_of_the_foreground_when_possible():
    # A 17-px crop of a 40x20 image: offsets top 0..23, left 0..3. The 4x4
    # object at rows 34..37 is kept whole (>= 85%) only for top in 21..23,
    # i.e. with probability 1/8 per crop, 1 - (7/8)^32 = 0.986 with 31 retries.
    label = np.zeros((40, 20), np.uint8)
    label[34:38, 8:12] = 1
    image = np.zeros((40, 20, 3), np.float32)
    kept_with_retry, kept_without = [], []
    for seed in range(40):
        _, (crop,) = tt.rand_crop(image, [label], np.random.default_rng(seed), 17)
        kept_with_retry.append(np.count_nonzero(crop == 1))
        _, (crop,) = tt.rand_crop(image, [label], np.random.default_rng(seed), 17, max_retries=0)
        kept_without.append(np.count_nonzero(crop == 1))
    assert np.mean(np.asarray(kept_with_retry) >= 0.85 * 16) > 0.85
    assert np.mean(np.asarray(kept_without) >= 0.85 * 16) < 0.35


def test_crop_retry_succeeds_immediately_and_gives_up_after_31_retries():
    image = np.zeros((30, 30, 3), np.float32)
    easy = np.zeros((30, 30), np.uint8)
    easy[:5, :5] = 1  # the offset-0 crop keeps all of it
    rng = CountingRng()
    tt.rand_crop(image, [easy], rng, 17)
    assert rng.calls == 2  # one (top, left) draw
    impossible = np.ones((30, 30), np.uint8)  # a 17x17 crop keeps 32% at most
    rng = CountingRng()
    _, (crop,) = tt.rand_crop(image, [impossible], rng, 17)
    assert rng.calls == 2 * (1 + 31) and crop.shape == (17, 17)


def test_crop_offsets_cover_the_inclusive_range():
    image = np.zeros((10, 9, 3), np.float32)
    label = (2 * np.arange(90)).astype(np.uint8).reshape(10, 9)  # no 1s: no retry
    tops = set()
    for seed in range(60):
        _, (crop,) = tt.rand_crop(image, [label], np.random.default_rng(seed), 9)
        tops.add(int(crop[0, 0]) // 18)
    assert tops == {0, 1}


def test_normalize_maps_the_mean_colour_to_zero():
    image = np.broadcast_to(MEAN, (2, 2, 3))
    np.testing.assert_allclose(tt.normalize(image), 0.0, atol=1e-6)
    white = tt.normalize(np.full((1, 1, 3), 255.0, np.float32))
    np.testing.assert_allclose(white[0, 0], (255.0 - MEAN) / np.asarray(IMAGENET_STD), rtol=1e-6)


def test_chain_shares_the_geometric_draw_between_labels_and_is_seeded():
    rng_data = np.random.default_rng(0)
    image = rng_data.uniform(0, 255, (37, 29, 3)).astype(np.float32)
    binary = rng_data.integers(0, 2, (37, 29)).astype(np.uint8)
    binary[0] = 255
    base = np.where(binary == 1, 3, binary).astype(np.uint8)
    config = augment_config("pascal", crop_size=33)
    for seed in range(6):
        out_image, (out_binary, out_base) = tt.train_transform(
            image, [binary, base], np.random.default_rng(seed), config)
        assert out_image.shape == (33, 33, 3) and out_image.dtype == np.float32
        assert set(np.unique(out_binary).tolist()) <= {0, 1, 255}
        np.testing.assert_array_equal(out_base, np.where(out_binary == 1, 3, out_binary))
        again, (again_binary, _) = tt.train_transform(
            image, [binary, base], np.random.default_rng(seed), config)
        np.testing.assert_array_equal(again, out_image)
        np.testing.assert_array_equal(again_binary, out_binary)


class ScriptedRng:
    """Stands in for np.random.Generator with given draws, checked against their ranges."""

    def __init__(self, uniform, random, integers):
        self.draws = {"uniform": list(uniform), "random": list(random),
                      "integers": list(integers)}

    def _next(self, kind, low=None, high=None):
        value = self.draws[kind].pop(0)
        assert low is None or low <= value <= high, (kind, value, low, high)
        return value

    def uniform(self, low, high):
        return self._next("uniform", low, high)

    def random(self):
        return self._next("random")

    def integers(self, low, high, endpoint=False):
        return self._next("integers", low, high if endpoint else high - 1)


def test_chain_runs_the_reference_ops_in_order():
    # BAM's train transform chain written out with direct OpenCV/NumPy calls: scale
    # 1.07, rotate +7 deg, blur, flip, pad 32 -> 33 rows (top 0, bottom 1),
    # crop at left 6, normalise. Rotation and flip do not commute, nor do
    # scale, rotation and blur, so any other order gives another result.
    rng_data = np.random.default_rng(11)
    image = rng_data.uniform(0, 255, (30, 40, 3)).astype(np.float32)
    label = 2 * rng_data.integers(0, 2, (30, 40)).astype(np.uint8)
    label[:3] = 255
    label[12:17, 18:23] = 1  # stays inside the crop window: no retry
    config = augment_config("pascal", crop_size=33)
    rng = ScriptedRng(uniform=[1.07, 7.0], random=[0.2, 0.3, 0.4], integers=[0, 6])
    out_image, (out_label,) = tt.train_transform(image, [label], rng, config)
    assert all(not draws for draws in rng.draws.values())

    x = cv2.resize(image, None, fx=1.07, fy=1.07, interpolation=cv2.INTER_LINEAR)
    y = cv2.resize(label, None, fx=1.07, fy=1.07, interpolation=cv2.INTER_NEAREST)
    assert x.shape[:2] == (32, 43)
    matrix = cv2.getRotationMatrix2D((43 / 2, 32 / 2), 7.0, 1)
    x = cv2.warpAffine(x, matrix, (43, 32), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=IMAGENET_MEAN)
    y = cv2.warpAffine(y, matrix, (43, 32), flags=cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    x = cv2.GaussianBlur(x, (5, 5), 0)
    x, y = x[:, ::-1], y[:, ::-1]
    padded_x = np.empty((33, 43, 3), np.float32)
    padded_x[:] = MEAN
    padded_x[:32] = x
    padded_y = np.full((33, 43), 255, np.uint8)
    padded_y[:32] = y
    expected_image = (padded_x[:, 6:39] - MEAN) / np.asarray(IMAGENET_STD, np.float32)
    np.testing.assert_allclose(out_image, expected_image, atol=1e-4)
    np.testing.assert_array_equal(out_label, padded_y[:, 6:39])
