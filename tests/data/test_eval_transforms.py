"""Test-time resize/pad and the evaluation label (BAM `Resize`, `validate` with ori_resize)."""

import cv2
import numpy as np
import pytest

from svf_tf.data.episodes.loader import binary_label
from svf_tf.data.transforms import evaluation as test_transforms


@pytest.mark.parametrize("shape,size,expected", [
    ((375, 500), 473, (352, 472)),   # 375*473/500 = 354.75 -> 354 -> 352; 473 -> 472
    ((500, 375), 473, (472, 352)),
    ((480, 640), 641, (480, 640)),   # 480*641/640 = 480.75 -> 480
    ((20, 10), 17, (16, 8)),         # h >= w: 17 -> 16; 10*17/20 = 8.5 -> 8
    ((33, 33), 65, (64, 64)),
    # The reference computes ratio = 473 / 407 first: 296 * 1.16216... =
    # 343.99999999999994 -> 343 -> 336 (296 * 473 / 407 would give exactly 344).
    ((296, 407), 473, (336, 472)),
    ((407, 296), 473, (472, 336)),
    ((600, 645), 473, (432, 472)),   # 600 * (473 / 645) = 439.99999999999994 -> 432
])
def test_content_size_floors_both_sides_to_multiples_of_8(shape, size, expected):
    assert test_transforms.resized_shape(*shape, size) == expected


def test_too_elongated_image_is_refused():
    with pytest.raises(ValueError, match="3x200 px.*65 px"):
        test_transforms.resized_shape(3, 200, 65)


def test_500x375_image_gives_472x352_content_on_a_473_canvas():
    rng = np.random.default_rng(0)
    image = rng.uniform(1, 255, (375, 500, 3)).astype(np.float32)  # no zero pixels
    label = rng.integers(0, 3, (375, 500)).astype(np.uint8)
    canvas, (label_canvas,) = test_transforms.resize_and_pad(image, [label], 473)
    assert canvas.shape == (473, 473, 3) and label_canvas.shape == (473, 473)
    np.testing.assert_array_equal(canvas[:352, :472],
                                  cv2.resize(image, (472, 352), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(label_canvas[:352, :472],
                                  cv2.resize(label, (472, 352), interpolation=cv2.INTER_NEAREST))
    assert np.all(canvas[352:] == 0) and np.all(canvas[:, 472:] == 0)
    assert np.all(label_canvas[352:] == 255) and np.all(label_canvas[:, 472:] == 255)
    assert np.all(canvas[:352, :472] > 0)
    assert set(np.unique(label_canvas[:352, :472]).tolist()) <= {0, 1, 2}


def test_nearest_label_resize_by_hand():
    # 8x4 label to a 17-px canvas: content 16x8 (h >= w: 17 -> 16, 4*17/8 = 8.5
    # -> 8), i.e. exact 2x nearest upsampling.
    label = np.array([[0, 1, 1, 0], [1, 0, 255, 0], [255, 1, 0, 0], [0, 0, 1, 1]] * 2, np.uint8)
    image = np.zeros((8, 4, 3), np.float32)
    _, (label_canvas,) = test_transforms.resize_and_pad(image, [label], 17)
    expected = np.full((17, 17), 255, np.uint8)
    expected[:16, :8] = np.repeat(np.repeat(label, 2, 0), 2, 1)
    np.testing.assert_array_equal(label_canvas, expected)


def test_original_label_canvas_pads_bottom_right_with_255():
    label = np.array([[0, 1, 1, 255, 0], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], np.uint8)
    canvas = test_transforms.original_label_canvas(label)
    assert canvas.shape == (5, 5)
    np.testing.assert_array_equal(canvas[:3], label)
    assert np.all(canvas[3:] == 255)
    tall = test_transforms.original_label_canvas(label.T)
    np.testing.assert_array_equal(tall[:, :3], label.T)
    assert np.all(tall[:, 3:] == 255)


def test_binary_label_rule():
    label = np.array([[0, 3, 5], [255, 3, 12]], np.uint8)
    np.testing.assert_array_equal(binary_label(label, 3), [[0, 1, 0], [255, 1, 0]])
    np.testing.assert_array_equal(binary_label(label, 12), [[0, 0, 0], [255, 0, 1]])
    assert binary_label(label, 3).dtype == np.uint8
