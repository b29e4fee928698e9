"""Augmentation settings per dataset (BAM `config/{pascal,coco}/*.yaml`).

An `AugmentConfig` holds every number the training chain (`transforms.train`)
and the test resize (`transforms.evaluation`) use. The presets reproduce the
reference configs; `augment_config` returns one, optionally with smaller
crop/test sizes so CPU demos can run at e.g. 129 or 193 px.
"""

import dataclasses

from svf_tf.constants import input_size_error

# ImageNet statistics in 0..255 RGB units (BAM `train.py`, `main`: value_scale = 255).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def check_size(size: int, name: str) -> int:
    """Returns `size` if (size - 1) % 8 == 0 and size >= 9, else raises ValueError.

    The models compute their output size as (size - 1) / 8 * 8 + 1 (BAM
    `model/BAM.py`, `OneModel.forward`), which only gives back `size` when
    size - 1 is a multiple of 8.
    """
    error = input_size_error(name, size, minimum=9)
    if error:
        raise ValueError(error)
    return size


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Parameters of the training augmentation chain and the test resize.

    Args:
        name: preset name, for logs.
        scale_range: (min, max) of the uniform RandScale factor.
        crop_size: side of the square training crop; (crop_size - 1) % 8 == 0.
        test_size: side of the square test canvas; (test_size - 1) % 8 == 0.
        rotate_range: (min, max) rotation angle in degrees (cv2 convention,
            positive = counter-clockwise).
        rotate_prob: probability of rotating.
        blur_prob: probability of the 5x5 Gaussian blur.
        blur_kernel: Gaussian kernel side (sigma is derived by OpenCV).
        flip_prob: probability of the horizontal flip.
        fg_keep_ratio: the random crop is retried while it keeps fewer than
            this fraction of the label==1 pixels.
        max_crop_retries: at most this many re-crops; the last one is kept.
    """

    name: str
    scale_range: tuple[float, float]
    crop_size: int
    test_size: int
    rotate_range: tuple[float, float] = (-10.0, 10.0)
    rotate_prob: float = 0.5
    blur_prob: float = 0.5
    blur_kernel: int = 5
    flip_prob: float = 0.5
    fg_keep_ratio: float = 0.85
    max_crop_retries: int = 31

    def __post_init__(self):
        check_size(self.crop_size, "crop_size")
        check_size(self.test_size, "test_size")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(
                f"scale_range={self.scale_range!r} must satisfy 0 < min <= max, e.g. (0.9, 1.1)."
            )
        if self.rotate_range[0] > self.rotate_range[1]:
            raise ValueError(f"rotate_range={self.rotate_range!r} must satisfy min <= max.")
        for field in ("rotate_prob", "blur_prob", "flip_prob", "fg_keep_ratio"):
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{field}={value!r} must be in [0, 1].")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel={self.blur_kernel!r} must be a positive odd integer.")
        if self.max_crop_retries < 0:
            raise ValueError(f"max_crop_retries={self.max_crop_retries!r} must be >= 0.")


# Reference configs: BAM config/{pascal,coco}/*_resnet50.yaml and *_base.yaml.
PRESETS = {
    "pascal": AugmentConfig(name="pascal", scale_range=(0.9, 1.1), crop_size=473, test_size=473),
    "coco": AugmentConfig(name="coco", scale_range=(0.8, 1.25), crop_size=641, test_size=641),
    "bam_base_pascal": AugmentConfig(
        name="bam_base_pascal", scale_range=(0.5, 2.0), crop_size=417, test_size=473
    ),
    "bam_base_coco": AugmentConfig(
        name="bam_base_coco", scale_range=(0.5, 2.0), crop_size=417, test_size=641
    ),
}


def augment_config(
    preset_or_config: "str | AugmentConfig",
    *,
    crop_size: int | None = None,
    test_size: int | None = None,
    scale_range: tuple[float, float] | None = None,
) -> AugmentConfig:
    """Resolves a preset name (or a config) to an `AugmentConfig`.

    Args:
        preset_or_config: a name in `PRESETS` ("pascal", "coco",
            "bam_base_pascal", "bam_base_coco") or an `AugmentConfig`.
        crop_size: overrides the training crop side, e.g. 129 for CPU demos.
        test_size: overrides the test canvas side.
        scale_range: overrides the RandScale range, e.g. (0.2, 0.3) so that a
            65-pixel crop sees as much of a 160-320 px synthetic image as a
            473-pixel crop sees of a Pascal image.

    Returns:
        The config, with the overrides applied (validated again).
    """
    if isinstance(preset_or_config, AugmentConfig):
        config = preset_or_config
    elif preset_or_config in PRESETS:
        config = PRESETS[preset_or_config]
    else:
        raise ValueError(
            f"Unknown augmentation preset {preset_or_config!r}: use one of "
            f"{sorted(PRESETS)} or pass an AugmentConfig."
        )
    overrides = {}
    if crop_size is not None:
        overrides["crop_size"] = crop_size
    if test_size is not None:
        overrides["test_size"] = test_size
    if scale_range is not None:
        overrides["scale_range"] = tuple(float(v) for v in scale_range)
    return dataclasses.replace(config, **overrides) if overrides else config
