"""The benchmark's PyTorch version of the references' test loop, on hand-computed cases.

scripts/benchmark.py's eval section times svf-tf's evaluation against the
references' test loop (PFENet / BAM `test.py`, `ori_resize`), which it writes
in PyTorch: test transform, test Dataset, `intersectionAndUnionGPU` and the
loop's accumulation. These run here in-process, without models or subprocesses.
"""

import cv2
import numpy as np
import pytest

from benchmarks import reference_test_loop as loop
from svf_tf.data.episodes.sampling import Episode

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

MEAN = np.array([0.485, 0.456, 0.406]) * 255
STD = np.array([0.229, 0.224, 0.225]) * 255


# A 3 (high) x 5 (wide) label; class 7 is the episode's, 3 another class, 255 ignored.
RAW_LABEL = np.array([[7, 7, 0, 3, 255],
                      [0, 7, 7, 3, 3],
                      [255, 0, 0, 7, 7]], np.uint8)
BINARY = np.array([[1, 1, 0, 0, 255],
                   [0, 1, 1, 0, 0],
                   [255, 0, 0, 1, 1]], np.uint8)
# S = 17: long side 5 -> 17, short side int(3 * (17 / 5)) = int(10.2) = 10; floored to
# multiples of 8: 8 x 16 content, top-left of the 17 x 17 canvas. INTER_NEAREST takes
# source index floor(i * 3 / 8) for row i and floor(j * 5 / 16) for column j.
ROWS = [0, 0, 0, 1, 1, 1, 2, 2]
COLS = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]


def expected_mask(binary):
    mask = np.full((17, 17), 255)
    mask[:8, :16] = binary[np.ix_(ROWS, COLS)]
    return mask


def expected_image(rgb):
    """A constant image: the content stays rgb, the pad is 0, both then normalised."""
    image = np.zeros((3, 17, 17))
    image[:, :8, :16] = np.asarray(rgb, float)[:, None, None]
    return (image - MEAN[:, None, None]) / STD[:, None, None]


def test_test_transform_resizes_floors_pads_and_normalises():
    image = np.full((3, 5, 3), (10.0, 120.0, 250.0), np.float32)
    tensor, mask = loop.torch_test_transform(image, BINARY, 17)
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (3, 17, 17)
    assert mask.dtype == torch.int64 and tuple(mask.shape) == (17, 17)
    np.testing.assert_array_equal(mask.numpy(), expected_mask(BINARY))
    np.testing.assert_allclose(tensor.numpy(), expected_image((10, 120, 250)), rtol=1e-5,
                               atol=1e-5)


def test_test_episodes_read_bgr_files_binarise_for_the_class_and_keep_the_raw_label(
        tmp_path):
    bgr = np.full((3, 5, 3), (250, 120, 10), np.uint8)  # RGB (10, 120, 250) on disk as BGR
    for name in ("query", "support"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), bgr)
        cv2.imwrite(str(tmp_path / f"{name}_label.png"), RAW_LABEL)
    items = [(str(tmp_path / f"{n}.png"), str(tmp_path / f"{n}_label.png"))
             for n in ("query", "support")]
    episode = Episode(query=items[0], class_id=7, class_slot=2, supports=(items[1],))
    dataset = loop.TorchTestEpisodes([episode], 17)
    assert len(dataset) == 1
    query, label, supports, masks, class_slot, raw_label = dataset[0]
    np.testing.assert_allclose(query.numpy(), expected_image((10, 120, 250)), atol=1e-5)
    np.testing.assert_array_equal(label.numpy(), expected_mask(BINARY))
    assert tuple(supports.shape) == (1, 3, 17, 17) and tuple(masks.shape) == (1, 17, 17)
    np.testing.assert_allclose(supports[0].numpy(), expected_image((10, 120, 250)), atol=1e-5)
    np.testing.assert_array_equal(masks[0].numpy(), expected_mask(BINARY))
    assert class_slot == 2
    np.testing.assert_array_equal(raw_label, BINARY)  # original size, binary, 255 kept


def test_intersection_and_union_ignores_255_as_the_references_do():
    # After the prediction takes 255 where the target has it: pred [0, 255, 1, 1],
    # target [0, 255, 0, 1]. Intersection (equal, in [0, 1]): one 0, one 1.
    # Prediction areas: one 0, two 1; target: two 0, one 1; union = 1+2-1, 2+1-1.
    output = torch.tensor([[0, 0], [1, 1]])
    target = torch.tensor([[0, 255], [0, 1]])
    intersection, union, area_target = loop.intersection_and_union(output, target)
    assert intersection.tolist() == [1.0, 1.0]
    assert union.tolist() == [2.0, 2.0]
    assert area_target.tolist() == [2.0, 1.0]
    assert output.tolist() == [[0, 0], [1, 1]]  # the caller's prediction is left alone


def test_test_loop_scores_at_the_original_size_per_class_slot():
    """Foreground everywhere, one episode of slot 3 whose raw label is 2 x 3.

    L = 3: the target is the label over a 3 x 3 canvas of 255, so 5 pixels
    count: foreground 3 (all hit), background 2 (all missed). Slot 3's IoU
    3/5, the other four slots 0: mIoU 0.12; FB-IoU (0/2 + 3/5) / 2 = 0.3.
    """
    size = 9
    raw_label = torch.tensor([[[1, 0, 1], [255, 1, 0]]], dtype=torch.uint8)
    batch = (torch.zeros(1, 3, size, size), None, torch.zeros(1, 1, 3, size, size),
             torch.zeros(1, 1, size, size), torch.tensor([3]), raw_label)

    class Foreground(torch.nn.Module):
        def forward(self, query, supports, masks):
            return torch.stack([torch.zeros(1, size, size), torch.ones(1, size, size)], 1)

    report = loop.torch_test_loop(Foreground(), [batch], num_classes=5)
    assert report["episodes"] == 1 and report["episodes_per_s"] > 0
    assert report["miou"] == pytest.approx(0.12)
    assert report["fb_iou"] == pytest.approx(0.3)
