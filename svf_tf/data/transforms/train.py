"""Training augmentation chain with OpenCV (BAM `util/transform.py`, built in `train.py` `main`).

Every op takes an RGB float32 image in 0..255, a list of HxW uint8 label maps
that share the image's geometry (the binary episode label and, for BAM, the
base annotation) and an explicit `np.random.Generator`. Labels always use
nearest-neighbour interpolation and 255 for areas the op invents (padding,
rotation corners); the image uses the mean colour there, which becomes 0
after normalisation.

The first label drives the crop's foreground-retention retry (it counts
pixels == 1), as in the reference, where it is the binary episode label.
"""

import cv2
import numpy as np

from svf_tf.data.image_io import IGNORE_LABEL
from svf_tf.data.transforms.presets import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig

Labels = list[np.ndarray]


def rand_scale(image: np.ndarray, labels: Labels, rng: np.random.Generator,
               scale_range: tuple[float, float]) -> tuple[np.ndarray, Labels]:
    """Resizes by one factor s ~ U(scale_range) on both axes.

    Args:
        image: HxWx3 float32.
        labels: HxW uint8 maps.
        rng: random generator.
        scale_range: (min, max) of the factor.

    Returns:
        The resized image (INTER_LINEAR) and labels (INTER_NEAREST).
    """
    scale = rng.uniform(scale_range[0], scale_range[1])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    labels = [cv2.resize(label, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
              for label in labels]
    return image, labels


def rotate(image: np.ndarray, labels: Labels, angle: float) -> tuple[np.ndarray, Labels]:
    """Rotates by `angle` degrees about (w/2, h/2), keeping the size.

    Args:
        image: HxWx3 float32.
        labels: HxW uint8 maps.
        angle: degrees, positive = counter-clockwise (OpenCV convention).

    Returns:
        The rotated image (INTER_LINEAR, corners filled with the ImageNet mean
        colour) and labels (INTER_NEAREST, corners 255).
    """
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1)
    image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=IMAGENET_MEAN)
    labels = [cv2.warpAffine(label, matrix, (width, height), flags=cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE_LABEL)
              for label in labels]
    return image, labels


def rand_rotate(image: np.ndarray, labels: Labels, rng: np.random.Generator,
                angle_range: tuple[float, float], prob: float) -> tuple[np.ndarray, Labels]:
    """With probability `prob`, `rotate` by an angle ~ U(angle_range)."""
    if rng.random() < prob:
        return rotate(image, labels, rng.uniform(angle_range[0], angle_range[1]))
    return image, labels


def rand_blur(image: np.ndarray, rng: np.random.Generator, prob: float,
              kernel: int = 5) -> np.ndarray:
    """With probability `prob`, `cv2.GaussianBlur(image, (kernel, kernel), 0)`.

    With sigma 0 and kernel <= 7 OpenCV uses its fixed binomial table, for 5x5
    the separable [1, 4, 6, 4, 1] / 16 (not a sampled sigma = 1.1 Gaussian);
    the reference makes the same call. Only the image is blurred.
    """
    if rng.random() < prob:
        return cv2.GaussianBlur(image, (kernel, kernel), 0)
    return image


def rand_hflip(image: np.ndarray, labels: Labels, rng: np.random.Generator,
               prob: float) -> tuple[np.ndarray, Labels]:
    """With probability `prob`, mirrors the image and labels left-right."""
    if rng.random() < prob:
        image = np.ascontiguousarray(image[:, ::-1])
        labels = [np.ascontiguousarray(label[:, ::-1]) for label in labels]
    return image, labels


def pad_to(image: np.ndarray, labels: Labels, size: int) -> tuple[np.ndarray, Labels]:
    """Pads up to size x size where smaller: top = pad // 2, bottom = the rest.

    Args:
        image: HxWx3 float32.
        labels: HxW uint8 maps.
        size: minimum side.

    Returns:
        The image padded with the mean colour and the labels padded with 255
        (unchanged where already large enough).
    """
    height, width = image.shape[:2]
    pad_h, pad_w = max(size - height, 0), max(size - width, 0)
    if pad_h == 0 and pad_w == 0:
        return image, labels
    border = (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)
    image = cv2.copyMakeBorder(image, *border, cv2.BORDER_CONSTANT, value=IMAGENET_MEAN)
    labels = [cv2.copyMakeBorder(label, *border, cv2.BORDER_CONSTANT, value=IGNORE_LABEL)
              for label in labels]
    return image, labels


def rand_crop(image: np.ndarray, labels: Labels, rng: np.random.Generator, size: int,
              fg_keep_ratio: float = 0.85, max_retries: int = 31) -> tuple[np.ndarray, Labels]:
    """Pads (see `pad_to`) then takes a random size x size crop.

    The crop is redrawn while it keeps fewer than `fg_keep_ratio` of the
    label==1 pixels of `labels[0]` (counted after padding), at most
    `max_retries` times; the last crop is kept. This stops small objects from
    being cropped away, which would leave an episode without foreground.

    Args:
        image: HxWx3 float32.
        labels: HxW uint8 maps; at least one.
        rng: random generator; offsets are uniform integers in [0, H - size].
        size: crop side.
        fg_keep_ratio: required fraction of foreground kept.
        max_retries: number of re-crops allowed.

    Returns:
        size x size image and labels.
    """
    image, labels = pad_to(image, labels, size)
    height, width = image.shape[:2]
    total_fg = int(np.count_nonzero(labels[0] == 1))

    def draw():
        top = int(rng.integers(0, height - size, endpoint=True))
        left = int(rng.integers(0, width - size, endpoint=True))
        return top, left

    top, left = draw()
    for _ in range(max_retries):
        kept = np.count_nonzero(labels[0][top:top + size, left:left + size] == 1)
        if kept >= fg_keep_ratio * total_fg:
            break
        top, left = draw()
    window = (slice(top, top + size), slice(left, left + size))
    return (np.ascontiguousarray(image[window]),
            [np.ascontiguousarray(label[window]) for label in labels])


def normalize(image: np.ndarray) -> np.ndarray:
    """(image - ImageNet mean) / ImageNet std on 0..255 RGB, as float32."""
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    return ((image.astype(np.float32) - mean) / std).astype(np.float32)


def train_transform(image: np.ndarray, labels: Labels, rng: np.random.Generator,
                    config: AugmentConfig) -> tuple[np.ndarray, Labels]:
    """The full training chain: scale, rotate, blur, flip, crop, normalise.

    One draw is shared by the image and all `labels` (for BAM, the query's
    binary label and its base annotation). Call it once per image for
    independent query/support draws.

    Args:
        image: HxWx3 float32 RGB in 0..255.
        labels: HxW uint8 maps; `labels[0]` drives the crop retry.
        rng: random generator (consumed in a fixed order: scale, rotation,
            blur, flip, crop).
        config: augmentation parameters.

    Returns:
        The normalised crop_size x crop_size x 3 float32 image and the
        crop_size x crop_size uint8 labels.
    """
    image = np.asarray(image, np.float32)
    labels = [np.asarray(label, np.uint8) for label in labels]
    image, labels = rand_scale(image, labels, rng, config.scale_range)
    image, labels = rand_rotate(image, labels, rng, config.rotate_range, config.rotate_prob)
    image = rand_blur(image, rng, config.blur_prob, config.blur_kernel)
    image, labels = rand_hflip(image, labels, rng, config.flip_prob)
    image, labels = rand_crop(image, labels, rng, config.crop_size, config.fg_keep_ratio,
                              config.max_crop_retries)
    return normalize(image), labels
