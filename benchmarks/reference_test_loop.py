"""The references' test loop in PyTorch (PFENet and BAM `test.py` with `ori_resize: True`, batch
size 1; their `util/transform.py` and `util/util.py`)."""

import time

from svf_tf.data.transforms.presets import IMAGENET_MEAN, IMAGENET_STD


def torch_test_transform(image, label, size):
    """The references' test transform: `test_Resize(size)`, `ToTensor`, `Normalize`.

    The long side goes to `size`, the short side to int(short * size / long),
    then both are floored to a multiple of 8; the image (INTER_LINEAR) is
    pasted top-left on a size x size canvas of 0 before normalisation, the
    label (INTER_NEAREST) on 255.

    Args:
        image: HxWx3 float32 RGB, 0..255.
        label: HxW binary label (0, 1, 255).

    Returns:
        (3 x size x size float32 tensor, size x size int64 tensor).
    """
    import cv2
    import numpy as np
    import torch

    height, width = label.shape[:2]
    if height >= width:
        new_h, new_w = size, int(width * (size * 1.0 / height))
    else:
        new_h, new_w = int(height * (size * 1.0 / width)), size
    new_h, new_w = new_h // 8 * 8, new_w // 8 * 8
    canvas = np.zeros((size, size, 3))
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    mask = np.full((size, size), 255.0)
    mask[:new_h, :new_w] = cv2.resize(label.astype(np.float32), (new_w, new_h),
                                      interpolation=cv2.INTER_NEAREST)
    tensor = torch.from_numpy(canvas.transpose((2, 0, 1))).float()
    for channel, mean, std in zip(tensor, IMAGENET_MEAN, IMAGENET_STD, strict=True):
        channel.sub_(mean).div_(std)
    return tensor, torch.from_numpy(mask).long()


def intersection_and_union(output, target, classes=2, ignore_index=255):
    """The references' `intersectionAndUnionGPU`: per-class (intersection, union, target) areas.

    Pixels whose target is `ignore_index` are set to it in the prediction and
    fall outside histc's range. On the CPU `torch.histc` takes floats only, so
    the labels are cast (exact for these small integers).
    """
    output, target = output.reshape(-1).clone(), target.reshape(-1)
    output[target == ignore_index] = ignore_index
    intersection = output[output == target].float()
    area_intersection = intersection.histc(bins=classes, min=0, max=classes - 1)
    area_output = output.float().histc(bins=classes, min=0, max=classes - 1)
    area_target = target.float().histc(bins=classes, min=0, max=classes - 1)
    return area_intersection, area_output + area_target - area_intersection, area_target


class TorchTestEpisodes:
    """The references' test `SemData` (map-style Dataset) over saved episodes.

    Item: (query image, query label, support images [K,3,S,S], support labels
    [K,S,S], class slot, the raw binary query label at its original size),
    read with cv2 (BGR -> RGB float32; labels IMREAD_GRAYSCALE), binarised
    for the episode's class (255 kept), then `torch_test_transform`. A plain
    class (the DataLoader needs only `__len__` and `__getitem__`), so that
    this script imports without PyTorch.
    """

    def __init__(self, episodes, size):
        self.episodes, self.size = list(episodes), size

    def __len__(self):
        return len(self.episodes)

    def _read(self, item, class_id):
        import cv2
        import numpy as np

        image = cv2.cvtColor(cv2.imread(item[0], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        label = cv2.imread(item[1], cv2.IMREAD_GRAYSCALE)
        binary = np.zeros_like(label)
        binary[label == class_id] = 1
        binary[label == 255] = 255
        return np.float32(image), binary

    def __getitem__(self, index):
        import torch

        episode = self.episodes[index]
        image, raw_label = self._read(episode.query, episode.class_id)
        query, label = torch_test_transform(image, raw_label, self.size)
        supports = [torch_test_transform(*self._read(item, episode.class_id), self.size)
                    for item in episode.supports]
        return (query, label, torch.stack([s[0] for s in supports]),
                torch.stack([s[1] for s in supports]), episode.class_slot, raw_label)


def torch_test_loop(net, loader, num_classes):
    """The references' `validate` loop over `loader`: its report, timed like `evaluate_episodes`.

    Per episode, under `torch.no_grad()` and `eval()`: forward, the logits
    resized bilinearly (align_corners) to L x L, L the longer side of the raw
    label, argmax, the target the raw label pasted top-left on L x L of 255,
    `intersection_and_union`, summed per class slot (mIoU) and over the two
    labels (FB-IoU). The references also compute the loss for their log;
    left out here. Timed from the first batch request to the last metric
    update.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    class_intersection, class_union = np.zeros(num_classes), np.zeros(num_classes)
    intersection_sum, union_sum = np.zeros(2), np.zeros(2)
    net.eval()
    episodes = 0
    start = time.perf_counter()
    with torch.no_grad():
        for query, _, supports, masks, class_slot, raw_label in loader:
            output = net(query, supports, masks)
            height, width = raw_label.shape[1:]
            side = max(height, width)
            target = torch.full((1, side, side), 255, dtype=torch.long)
            target[0, :height, :width] = raw_label[0]
            output = F.interpolate(output, size=(side, side), mode="bilinear",
                                   align_corners=True)
            intersection, union, _ = intersection_and_union(output.max(1)[1], target)
            intersection, union = intersection.numpy(), union.numpy()
            intersection_sum += intersection
            union_sum += union
            class_intersection[int(class_slot[0])] += intersection[1]
            class_union[int(class_slot[0])] += union[1]
            episodes += 1
    seconds = time.perf_counter() - start
    return {"episodes": episodes, "seconds": seconds, "episodes_per_s": episodes / seconds,
            "miou": float(np.mean(class_intersection / (class_union + 1e-10))),
            "fb_iou": float(np.mean(intersection_sum / (union_sum + 1e-10)))}
