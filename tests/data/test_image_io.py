"""read_image / read_label: channel order, raw palette indices, and one-line errors."""

import cv2
import numpy as np
import pytest
from PIL import Image

from svf_tf.data import read_image, read_label


def _write(path, array, *params):
    assert cv2.imwrite(str(path), array, list(params))
    return str(path)


def test_read_image_is_rgb_float32(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR order
    bgr[0, 0] = (10, 20, 30)
    image = read_image(_write(tmp_path / "x.png", bgr))
    assert image.dtype == np.float32 and image.shape == (5, 7, 3)
    assert image[1, 1].tolist() == [200.0, 0.0, 0.0]
    assert image[0, 0].tolist() == [30.0, 20.0, 10.0]


def test_read_image_grayscale_jpeg_gives_three_channels(tmp_path):
    gray = np.tile(np.arange(0, 240, 8, dtype=np.uint8), (12, 1))
    image = read_image(_write(tmp_path / "g.jpg", gray, cv2.IMWRITE_JPEG_QUALITY, 100))
    assert image.shape == (12, 30, 3)
    assert np.abs(image[..., 0] - gray).max() <= 3
    assert np.array_equal(image[..., 0], image[..., 2])


def test_truncated_jpeg_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    data = cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))[1].tobytes()
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(data)
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert read_image(str(whole)).shape == (64, 64, 3)
    # OpenCV alone would return a grey-filled image here.
    assert cv2.imread(str(cut)) is not None
    with pytest.raises(ValueError, match=r"cut\.jpg.*truncated"):
        read_image(str(cut))


def test_bad_image_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg"):
        read_image(str(tmp_path / "missing.jpg"))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.jpg.*empty"):
        read_image(str(tmp_path / "empty.jpg"))
    (tmp_path / "text.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"text\.jpg.*cannot be decoded"):
        read_image(str(tmp_path / "text.jpg"))


def test_read_label_grayscale_png(tmp_path):
    label = np.array([[0, 1, 20], [255, 7, 0]], np.uint8)
    out = read_label(_write(tmp_path / "l.png", label))
    assert out.dtype == np.uint8
    assert np.array_equal(out, label)


def test_read_label_palette_png_gives_raw_indices(tmp_path):
    indices = np.array([[0, 1, 2], [15, 255, 3]], np.uint8)
    image = Image.fromarray(indices, mode="P")
    palette = [0] * 768
    palette[3:6] = [128, 0, 0]  # VOC colours: index 1 is dark red, 15 is (192, 128, 128)
    palette[6:9] = [0, 128, 0]
    palette[45:48] = [192, 128, 128]
    palette[765:768] = [224, 224, 192]
    image.putpalette(palette)
    path = str(tmp_path / "voc.png")
    image.save(path)
    # What a colour-converting reader gets: not the indices.
    assert not np.array_equal(cv2.imread(path, cv2.IMREAD_GRAYSCALE), indices)
    assert np.array_equal(read_label(path), indices)


def test_read_label_value_check(tmp_path):
    path = _write(tmp_path / "l.png", np.array([[0, 21, 255, 3, 42]], np.uint8))
    assert read_label(path, num_classes=80).max() == 255
    with pytest.raises(ValueError, match=r"l\.png.*\[21, 42\].*0\.\.20"):
        read_label(path, num_classes=20)


def test_bad_label_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nolabel\.png.*prepare_pascal"):
        read_label(str(tmp_path / "nolabel.png"))
    colour = _write(tmp_path / "colour.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"colour\.png.*single-channel"):
        read_label(colour)
    deep = _write(tmp_path / "deep.png", np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match=r"deep\.png.*uint16"):
        read_label(deep)
    jpeg = _write(tmp_path / "label.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"label\.jpg.*not a PNG"):
        read_label(jpeg)
    data = cv2.imencode(".png", np.arange(4096, dtype=np.uint8).reshape(64, 64) % 21)[1]
    (tmp_path / "cut.png").write_bytes(data.tobytes()[: data.size // 2])
    with pytest.raises(ValueError, match=r"cut\.png.*cannot be decoded"):
        read_label(str(tmp_path / "cut.png"))
