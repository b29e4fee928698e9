"""Reading and writing images and index-PNG labels (BAM `util/dataset.py`, `SemData.__getitem__`).

Images are decoded with OpenCV as BGR and converted to RGB float32, as the
references do. Labels are 8-bit index PNGs: SegmentationClassAug and the COCO
masks store class indices as grayscale pixels, while the original VOC
`SegmentationClass` files are palette PNGs whose pixel values are palette
indices. OpenCV (and `tf.io.decode_png`, tensorflow/tensorflow issue #28256)
expand palette PNGs to colours, so palette files are read through Pillow,
which returns the raw indices.

All errors name the file and say how to fix it, in one line. `write_image`
writes a file whole or not at all, so that a preparation script killed midway
never leaves a half PNG that its next run keeps as done.
"""

import os

import cv2
import numpy as np

from svf_tf.atomic_files import write_file_atomically
from svf_tf.constants import IGNORE_LABEL

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Byte offset of the colour-type field in a PNG (8-byte signature, 4-byte
# IHDR length, "IHDR", width, height, bit depth); 3 means palette.
_PNG_COLOR_TYPE_OFFSET = 25
_PNG_PALETTE = 3
_JPEG_SOI = b"\xff\xd8"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"


def _read_bytes(path: str, kind: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{kind} file {path!r} does not exist: check the dataset root and the list file "
            "(see scripts/prepare_pascal.py / scripts/prepare_coco.py)."
        )
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f"{kind} file {path!r} is empty: re-copy or re-generate it.")
    return data


def check_jpeg_complete(data, path: str) -> None:
    """Raises ValueError if a JPEG stream (bytes or uint8 array) stops before its end.

    Other formats pass unchecked (their decoders report truncation).
    libjpeg only warns on a truncated file and OpenCV returns the image with
    its missing part filled in grey, so truncation must be detected here. The
    end-of-image marker must follow the last start-of-scan marker (the marker
    bytes cannot occur inside entropy-coded data, and an EXIF thumbnail's own
    markers come before the main scan).
    """
    raw = data if isinstance(data, bytes) else data.tobytes()
    if not raw.startswith(_JPEG_SOI):
        return
    if raw.rfind(_JPEG_EOI) < raw.rfind(_JPEG_SOS):
        raise ValueError(
            f"Image {path!r} is a truncated JPEG (no end-of-image marker): re-copy it from the "
            "original dataset archive."
        )


def read_image(path: str) -> np.ndarray:
    """Reads an image as RGB.

    EXIF orientation is ignored so that the pixels stay on the same grid as
    the label PNG, which carries no orientation.

    Args:
        path: image file (JPEG or PNG).

    Returns:
        float32 array of shape (H, W, 3), RGB, values 0..255.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, truncated or not a decodable image.
    """
    data = _read_bytes(path, "Image")
    check_jpeg_complete(data, path)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise ValueError(
            f"Image {path!r} cannot be decoded (corrupt, truncated or not an image): re-copy it "
            "from the original dataset archive."
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)


def _decode_palette_png(raw: bytes, path: str) -> np.ndarray:
    try:
        import io

        from PIL import Image
    except ImportError as error:
        raise ValueError(
            f"Label {path!r} is a palette PNG, which needs Pillow to read its raw indices: "
            "pip install Pillow."
        ) from error
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            return np.array(image, dtype=np.uint8)
    except OSError as error:
        raise ValueError(
            f"Label {path!r} cannot be decoded ({error}): re-copy it or re-run the preparation "
            "script."
        ) from error


def read_label(path: str, *, num_classes: int | None = None) -> np.ndarray:
    """Reads an index-PNG label as raw class indices.

    Args:
        path: label PNG, either grayscale (SegmentationClassAug, COCO masks) or
            palette (VOC SegmentationClass); palette PNGs are never converted
            to colours.
        num_classes: if given, every value must be 0..num_classes or 255
            (ignore); anything else raises ValueError.

    Returns:
        uint8 array of shape (H, W).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a decodable single-channel 8-bit PNG, or
            holds a value outside the dataset's classes.
    """
    data = _read_bytes(path, "Label")
    raw = data.tobytes()
    if not raw.startswith(PNG_SIGNATURE) or len(raw) <= _PNG_COLOR_TYPE_OFFSET:
        raise ValueError(
            f"Label {path!r} is not a PNG: labels must be 8-bit index PNGs "
            "(make them with scripts/prepare_pascal.py or scripts/prepare_coco.py)."
        )
    if raw[_PNG_COLOR_TYPE_OFFSET] == _PNG_PALETTE:
        label = _decode_palette_png(raw, path)
    else:
        label = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if label is None:
            raise ValueError(
                f"Label {path!r} cannot be decoded (corrupt or truncated PNG): re-copy it or "
                "re-run the preparation script."
            )
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(
            f"Label {path!r} has shape {label.shape} and dtype {label.dtype}, not a single-channel "
            "8-bit index image: convert colour masks to class indices with "
            "scripts/prepare_pascal.py or scripts/prepare_coco.py."
        )
    if num_classes is not None:
        check_label_values(label, num_classes, path)
    return label


def check_label_values(label: np.ndarray, num_classes: int, path: str) -> None:
    """Raises ValueError if `label` holds a value other than 0..num_classes or 255."""
    values = np.unique(label)
    bad = values[(values > num_classes) & (values != IGNORE_LABEL)]
    if bad.size:
        raise ValueError(
            f"Label {path!r} contains class value(s) {bad.tolist()} outside 0..{num_classes} and "
            f"{IGNORE_LABEL}: is the --dataset right, and was the label made by "
            "scripts/prepare_pascal.py / scripts/prepare_coco.py?"
        )


def write_image(path: str, image: np.ndarray, params=(), *, durable: bool = True) -> None:
    """Writes an image or label array, whole or not at all (`svf_tf.atomic_files`).

    `cv2.imwrite` writes in place and only returns False when it fails, so a
    full disk or a kill leaves half a file. Here the array is encoded in
    memory (`cv2.imencode`, format from the file extension) and the bytes are
    written to a temporary sibling that replaces `path` once complete.

    Args:
        path: destination; its extension (".png", ".jpg") picks the format,
            and its parent directories are created.
        image: uint8 array, (H, W) for a label or (H, W, 3) BGR for an image.
        params: OpenCV encoding flags, e.g. `[cv2.IMWRITE_JPEG_QUALITY, 90]`.
        durable: flush to the disk before the rename (`write_file_atomically`).

    Raises:
        ValueError: the array cannot be encoded in the format of `path`.
        OSError: the file cannot be written (naming `path`); the previous file,
            if any, is left as it was.
    """
    extension = os.path.splitext(path)[1]
    try:
        ok, encoded = cv2.imencode(extension, image, list(params))
    except cv2.error as error:
        ok, encoded = False, error
    if not ok:
        raise ValueError(
            f"Cannot encode a {np.asarray(image).dtype} array of shape {np.shape(image)} as "
            f"{extension or 'an image without extension'} for {path!r}: use a .png or .jpg path "
            "and a uint8 (H, W) or (H, W, 3) array."
        )
    write_file_atomically(path, encoded.tobytes(), durable=durable)
