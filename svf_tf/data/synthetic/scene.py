"""Renders one image/label pair of the synthetic few-shot dataset.

Each of the 20 classes is a (shape family, texture family) pair. There are 10
shape families and 10 texture families; every shape and every texture is used
by exactly two classes, so neither cue alone names the class and a model has
to compare the query with the support. Instances vary in size, aspect ratio,
rotation, shape parameters (star depth, ring width, blob wobble, ...), texture
period and both colours. A texture's period is a fraction of its object's
size, so the pattern survives the downscaling of reduced-resolution runs
(the demo sees the images at about a quarter of their size). Backgrounds are
colour gradients with low-frequency noise and unlabelled clutter patches that
reuse the object textures on irregular shapes. Labels follow VOC: class
indices, 0 for background, and a thin ring of 255 on every object boundary.
"""

import cv2
import numpy as np

SHAPES = ("ellipse", "rectangle", "triangle", "star", "cross", "ring", "crescent", "hexagon",
          "arrow", "blob")
TEXTURES = ("stripes", "checker", "dots", "rings", "grid", "waves", "gradient", "speckle",
            "spots", "bordered")
NUM_SYNTHETIC_CLASSES = 20
_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point shift: polygons drawn at 1/16 px.
#: Texture period as a fraction of the object's half-size (`_Placement.scale`):
#: 4 to 7 periods across an object at any image size.
TEXTURE_PERIOD_RANGE = (0.3, 0.5)
MIN_TEXTURE_PERIOD = 4.0  # pixels; small objects keep a visible pattern.


def class_design(class_id: int) -> tuple[str, str]:
    """The (shape, texture) pair of a class 1..20; all 20 pairs are distinct."""
    i = class_id - 1
    return SHAPES[i % 10], TEXTURES[(i + 3 * (i // 10)) % 10]


def _circle(n=48, radius=1.0, center=(0.0, 0.0)):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([center[0] + radius * np.cos(t), center[1] + radius * np.sin(t)], 1)


def _regular(n, rng, jitter=0.08):
    t = -np.pi / 2 + np.arange(n) * 2 * np.pi / n + rng.uniform(-jitter, jitter, n)
    return np.stack([np.cos(t), np.sin(t)], 1)


def unit_shape(name: str, rng: np.random.Generator):
    """A shape in unit coordinates: (polygons to fill, polygons to cut out)."""
    if name == "ellipse":
        return [_circle()], []
    if name == "rectangle":
        return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)], []
    if name == "triangle":
        return [_regular(3, rng, 0.2)], []
    if name == "star":
        inner = rng.uniform(0.38, 0.55)
        points = _regular(10, rng, 0.03) * np.where(np.arange(10) % 2, inner, 1.0)[:, None]
        return [points], []
    if name == "cross":
        w = rng.uniform(0.25, 0.4)
        return [np.array([[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1], [-w, 1],
                          [-w, w], [-1, w], [-1, -w], [-w, -w]], float)], []
    if name == "ring":
        return [_circle()], [_circle(radius=rng.uniform(0.45, 0.62))]
    if name == "crescent":
        shift = rng.uniform(0.4, 0.6)
        return [_circle()], [_circle(radius=rng.uniform(0.8, 0.95), center=(shift, 0.0))]
    if name == "hexagon":
        return [_regular(6, rng, 0.05)], []
    if name == "arrow":
        w, head, neck = rng.uniform(0.18, 0.32), rng.uniform(0.6, 0.9), rng.uniform(0.0, 0.35)
        return [np.array([[-1, -w], [neck, -w], [neck, -head], [1, 0], [neck, head], [neck, w],
                          [-1, w]], float)], []
    if name == "blob":
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        r = np.ones_like(t)
        for k in (3, 4, 5):
            r += rng.uniform(0.08, 0.16) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
        return [np.stack([r * np.cos(t), r * np.sin(t)], 1)], []
    raise ValueError(f"Unknown shape {name!r}: use one of {SHAPES}.")


def _polygon_area(polygons) -> float:
    return float(sum(abs(cv2.contourArea(p.astype(np.float32))) for p in polygons))


class _Placement:
    """Scale, aspect, rotation and position of one object; maps unit to pixels."""

    def __init__(self, scale, aspect, angle, center):
        self.scale, self.angle = scale, angle
        c, s = np.cos(angle), np.sin(angle)
        stretch = np.diag([scale * np.sqrt(aspect), scale / np.sqrt(aspect)])
        self.matrix = np.array([[c, -s], [s, c]]) @ stretch
        self.center = np.asarray(center, float)

    def to_pixels(self, points):
        return points @ self.matrix.T + self.center

    def to_local(self, xs, ys):
        """Pixel coordinates -> rotated (unstretched) object frame, in pixels."""
        dx, dy = xs - self.center[0], ys - self.center[1]
        c, s = np.cos(self.angle), np.sin(self.angle)
        return c * dx + s * dy, -s * dx + c * dy


def _fill(mask, polygons, placement, value):
    pts = [np.round(placement.to_pixels(p) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
           for p in polygons]
    cv2.fillPoly(mask, pts, value, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def shape_mask(shape, placement, size):
    """Boolean (H, W) mask of a placed shape."""
    add, cut = shape
    mask = np.zeros(size, np.uint8)
    _fill(mask, add, placement, 1)
    if cut:
        _fill(mask, cut, placement, 0)
    return mask.astype(bool)


def _texture(name, u, v, mask_crop, period, rng):
    """Pattern value in [0, 1] at local coordinates (u, v)."""
    if name == "stripes":
        return (np.sin(2 * np.pi * v / period) > 0).astype(np.float32)
    if name == "checker":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if name == "dots":
        du, dv = u % period - period / 2, v % period - period / 2
        return (du * du + dv * dv < (0.3 * period) ** 2).astype(np.float32)
    if name == "rings":
        return (np.sin(2 * np.pi * np.hypot(u, v) / period) > 0).astype(np.float32)
    if name == "grid":
        lines = (np.abs(np.sin(np.pi * u / period)) < 0.35) | (
            np.abs(np.sin(np.pi * v / period)) < 0.35)
        return lines.astype(np.float32)
    if name == "waves":
        return (np.sin(2 * np.pi * (v + 0.4 * period * np.sin(2 * np.pi * u / (3 * period)))
                       / period) > 0).astype(np.float32)
    if name == "gradient":
        return np.clip((u - u.min()) / max(float(np.ptp(u)), 1.0), 0, 1).astype(np.float32)
    if name == "speckle":
        h, w = u.shape
        cell = max(2, int(period / 3))
        cells = (rng.random((h // cell + 1, w // cell + 1)) > 0.5).astype(np.float32)
        return cells.repeat(cell, 0).repeat(cell, 1)[:h, :w]
    if name == "spots":
        pattern = np.zeros(u.shape, np.float32)
        h, w = u.shape
        for _ in range(max(3, h * w // int(6 * period * period))):
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.uniform(0.25, 0.6) * period), int(rng.uniform(0.25, 0.6) * period))
            cv2.ellipse(pattern, center, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        return pattern
    if name == "bordered":
        distance = cv2.distanceTransform(mask_crop.astype(np.uint8), cv2.DIST_L2, 3)
        return (distance < 0.6 * period).astype(np.float32)
    raise ValueError(f"Unknown texture {name!r}: use one of {TEXTURES}.")


def _colour_pair(rng):
    c1 = rng.uniform(0, 255, 3)
    while True:
        c2 = rng.uniform(0, 255, 3)
        if np.abs(c1 - c2).sum() > 150:
            return c1, c2


def paint_texture(image, mask, texture, placement, rng):
    """Paints a textured object (or clutter patch) into `image` where `mask`."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    grid_y, grid_x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = placement.to_local(grid_x, grid_y)
    crop = mask[y0:y1, x0:x1]
    period = max(MIN_TEXTURE_PERIOD, placement.scale * rng.uniform(*TEXTURE_PERIOD_RANGE))
    p = _texture(texture, u, v, crop, period, rng)[..., None]
    c1, c2 = _colour_pair(rng)
    # Soft directional lighting, so colour is not flat inside an object.
    light = 1.0 + rng.uniform(-0.15, 0.15) * (u / max(placement.scale, 1.0))[..., None]
    colours = (c1 * (1 - p) + c2 * p) * light
    region = image[y0:y1, x0:x1]
    region[crop] = colours[crop]


def _background(rng, height, width):
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    image = c1 * (1 - ramp[..., None]) + c2 * ramp[..., None]
    noise = rng.normal(0, 25, (int(rng.integers(3, 8)), int(rng.integers(3, 8)), 3))
    image += cv2.resize(noise.astype(np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    return image.astype(np.float32)


def _clutter(image, rng):
    """Unlabelled distractor patches: irregular polygons with object textures."""
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(0, 3))):
        n = int(rng.integers(5, 9))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.5, 1.0, n)
        polygon = np.stack([r * np.cos(t), r * np.sin(t)], 1)
        scale = rng.uniform(0.08, 0.2) * min(height, width)
        placement = _Placement(scale, rng.uniform(0.6, 1.6), rng.uniform(0, 2 * np.pi),
                               (rng.uniform(0, width), rng.uniform(0, height)))
        mask = shape_mask(([polygon], []), placement, (height, width))
        paint_texture(image, mask, TEXTURES[int(rng.integers(len(TEXTURES)))], placement, rng)


def _place(rng, shape, area, size, inside):
    height, width = size
    placement = _Placement(np.sqrt(area / max(_polygon_area(shape[0]) - _polygon_area(shape[1]),
                                              1e-3)),
                           rng.uniform(0.6, 1.6), rng.uniform(0, 2 * np.pi), (0.0, 0.0))
    corners = placement.to_pixels(np.concatenate(shape[0]))
    lo, hi = corners.min(0), corners.max(0)
    if inside and hi[0] - lo[0] < width and hi[1] - lo[1] < height:
        center = (rng.uniform(-lo[0], width - hi[0]), rng.uniform(-lo[1], height - hi[1]))
    else:
        center = (rng.uniform(0, width), rng.uniform(0, height))
    placement.center = np.asarray(center, float)
    return placement


def boundary_ring(label: np.ndarray, width: int) -> np.ndarray:
    """Pixels within `width` px of a change of class (VOC-style void boundary)."""
    kernel = np.ones((3, 3), np.uint8)
    grown = cv2.dilate(label, kernel, iterations=width)
    shrunk = cv2.erode(label, kernel, iterations=width)
    return grown != shrunk


def render_scene(rng: np.random.Generator, height: int, width: int, main_class: int, *,
                 extra_classes=(), main_min_pixels: int, ring_width: int = 1,
                 design=class_design):
    """Renders one image and its label.

    The main object is drawn last, fully inside the image, and re-drawn larger
    until it keeps at least `main_min_pixels` labelled pixels after the 255
    ring, so it always qualifies for its class's support pool. Extra objects
    may be small, cut by the border or occluded.

    Args:
        rng: the random generator of this image.
        height, width: image size.
        main_class: class 1..20 of the guaranteed large object.
        extra_classes: classes of further objects, drawn first.
        main_min_pixels: minimum labelled pixels of the main object.
        ring_width: width in pixels of the 255 boundary ring on each side.
        design: class id -> (shape, texture); the few-shot dataset's 20
            classes by default (`class_design`). The pre-training corpus
            passes its own table of all 100 pairs
            (`svf_tf.data.synthetic.pretraining`); label values are the ids.

    Returns:
        (image uint8 (H, W, 3) RGB, label uint8 (H, W)).
    """
    size = (height, width)
    image = _background(rng, height, width)
    _clutter(image, rng)
    label = np.zeros(size, np.uint8)
    area_total = height * width
    for c in extra_classes:
        shape_name, texture = design(c)
        shape = unit_shape(shape_name, rng)
        placement = _place(rng, shape, rng.uniform(0.005, 0.12) * area_total, size, inside=False)
        mask = shape_mask(shape, placement, size)
        paint_texture(image, mask, texture, placement, rng)
        label[mask] = c
    shape_name, texture = design(main_class)
    low = max(1.5 * main_min_pixels, 0.06 * area_total)
    area = rng.uniform(low, max(low, 0.3 * area_total))
    for _ in range(20):
        shape = unit_shape(shape_name, rng)
        placement = _place(rng, shape, area, size, inside=True)
        mask = shape_mask(shape, placement, size)
        final = label.copy()
        final[mask] = main_class
        final[boundary_ring(final, ring_width)] = 255
        if np.count_nonzero(final == main_class) >= main_min_pixels:
            break
        area = min(area * 1.3, 0.45 * area_total)
    else:
        raise ValueError(
            f"Cannot fit a class-{main_class} object of {main_min_pixels} px into a "
            f"{height}x{width} image: use larger min_side/max_side."
        )
    paint_texture(image, mask, texture, placement, rng)
    image = cv2.GaussianBlur(image, (3, 3), 0.7)
    image += rng.normal(0, 4, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), final
