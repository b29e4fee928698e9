"""Test-time resize/pad and the original-resolution evaluation label.

BAM `util/transform.py` (`Resize`) and `train.py` (`validate`,
`ori_resize`). The test canvas reproduces the reference
exactly, including its quirks: both sides are floored to a multiple of 8, so
the long side of the content is 472 on a 473 canvas; the image is pasted at
the top-left on zeros *before* normalisation (the pad becomes -mean/std);
the label is pasted on 255.
"""

import cv2
import numpy as np

from svf_tf.data.image_io import IGNORE_LABEL


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The (height, width) of the content on a size x size test canvas.

    The long side goes to `size` and the short side keeps the aspect ratio
    (truncated, with the reference's floating-point order); then each side not
    a multiple of 8 is floored to one.

    Args:
        height: original image height.
        width: original image width.
        size: canvas side.

    Returns:
        (new_height, new_width), e.g. (352, 472) for a 375x500 image and 473.
    """
    # The ratio is computed first, as in the reference (`ratio = test_size * 1.0 / ori_h`;
    # `int(ori_w * ratio)`): w * (size / h) can fall just below an integer that
    # w * size / h hits exactly (296 * (473 / 407) = 343.99...), which changes
    # the result by 8 px after flooring.
    if height >= width:
        new_h, new_w = size, int(width * (size / height))
    else:
        new_h, new_w = int(height * (size / width)), size
    new_h, new_w = (new_h // 8) * 8, (new_w // 8) * 8
    if new_h == 0 or new_w == 0:
        raise ValueError(
            f"An image of {height}x{width} px is too elongated for a {size} px test canvas: "
            "its short side would be resized to fewer than 8 px. Use a larger test size."
        )
    return new_h, new_w


def resize_and_pad(image: np.ndarray, labels: list[np.ndarray],
                   size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Resizes into the top-left of a size x size canvas (not normalised).

    Args:
        image: HxWx3 float32 RGB in 0..255.
        labels: HxW uint8 maps with the image's geometry.
        size: canvas side, e.g. 473.

    Returns:
        The size x size x 3 float32 image (INTER_LINEAR, padded with 0) and
        the size x size uint8 labels (INTER_NEAREST, padded with 255). The
        image still needs `svf_tf.data.transforms.train.normalize`.
    """
    new_h, new_w = resized_shape(image.shape[0], image.shape[1], size)
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[:new_h, :new_w] = cv2.resize(np.asarray(image, np.float32), (new_w, new_h),
                                        interpolation=cv2.INTER_LINEAR)
    out_labels = []
    for label in labels:
        label_canvas = np.full((size, size), IGNORE_LABEL, np.uint8)
        label_canvas[:new_h, :new_w] = cv2.resize(np.asarray(label, np.uint8), (new_w, new_h),
                                                  interpolation=cv2.INTER_NEAREST)
        out_labels.append(label_canvas)
    return canvas, out_labels


def original_label_canvas(binary_label: np.ndarray) -> np.ndarray:
    """The evaluation target: the raw binary label on an L x L canvas of 255.

    L = max(H0, W0). The label is pasted at the top-left, as the reference
    does before comparing it with predictions resized to L x L.

    Args:
        binary_label: H0xW0 label in {0, 1, 255} at the original resolution.

    Returns:
        L x L uint8 array.
    """
    height, width = binary_label.shape[:2]
    side = max(height, width)
    canvas = np.full((side, side), IGNORE_LABEL, np.uint8)
    canvas[:height, :width] = binary_label
    return canvas
