"""`--mode=predict`: segment one query image given support images and masks."""

import os

import cv2
import numpy as np
import tensorflow as tf

from svf_tf.data.image_io import read_image, read_label
from svf_tf.data.transforms.evaluation import resize_and_pad, resized_shape
from svf_tf.data.transforms.train import normalize
from svf_tf.ops.align_corners_resize import resize_align_corners
from svf_tf.runs.restore import restore_model
from svf_tf.tasks.few_shot import FewShotTask


def prepare_episode(query_path, support_paths, mask_paths, class_id, size):
    """Reads and resizes an episode as the test pipeline does.

    BAM `util/transform.py` (`Resize`, the validation resize): aspect kept, both
    sides floored to a multiple of 8, pasted top-left on a zero canvas (labels: 255).
    """
    if not support_paths or len(support_paths) != len(mask_paths):
        raise ValueError(
            f"predict needs as many --support_masks as --supports, at least one; got "
            f"{len(support_paths)} supports and {len(mask_paths)} masks.")
    query = read_image(query_path)
    query_canvas, _ = resize_and_pad(query, [], size)
    images, masks = [], []
    for image_path, mask_path in zip(support_paths, mask_paths, strict=True):
        image, label = read_image(image_path), read_label(mask_path)
        if image.shape[:2] != label.shape:
            raise ValueError(
                f"Support mask {mask_path!r} is {label.shape[1]}x{label.shape[0]} but its image "
                f"{image_path!r} is {image.shape[1]}x{image.shape[0]}; they must match.")
        if not np.any(label == class_id):
            raise ValueError(
                f"Support mask {mask_path!r} has no pixel of value {class_id} (values present: "
                f"{sorted(np.unique(label).tolist())[:10]}); set --class_id to the object's "
                "value.")
        binary = np.where(label == class_id, 1, np.where(label == 255, 255, 0)).astype(np.uint8)
        canvas, (mask,) = resize_and_pad(image, [binary], size)
        images.append(normalize(canvas))
        masks.append(mask.astype(np.int32))
    return (normalize(query_canvas)[None], np.stack(images)[None], np.stack(masks)[None],
            query)


def predict_episode(config, query_path, support_paths, mask_paths, class_id=1,
                    checkpoint_path=None, output_dir=None, log=print, adapters=()):
    """Writes `<name>_mask.png` (0/255) and `<name>_overlay.png` for the query.

    `adapters`: at most one adapter file, loaded over the checkpoint's SVF layers.

    Returns:
        (mask path, overlay path).
    """
    config_shot = len(support_paths)
    if config_shot != config.data.shot:
        raise ValueError(
            f"{config_shot} support image(s) given but the model is {config.data.shot}-shot; "
            f"pass --shot={config_shot} with a checkpoint trained for it.")
    task = FewShotTask(config, log)  # no dataset is read to predict
    model, _ = restore_model(task, checkpoint_path, adapters)
    query, supports, masks, original = prepare_episode(query_path, support_paths, mask_paths,
                                                       class_id, config.data.test_size)
    logits = task.make_predict_fn(model)(tf.constant(query), tf.constant(supports),
                                         tf.constant(masks))
    height, width = original.shape[:2]
    new_h, new_w = resized_shape(height, width, config.data.test_size)
    content = resize_align_corners(logits[:, :new_h, :new_w], (height, width))
    mask = (np.argmax(content.numpy()[0], axis=-1) == 1).astype(np.uint8) * 255
    output_dir = output_dir or os.path.join(config.run_dir, "predictions")
    os.makedirs(output_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(query_path))[0]
    mask_path = os.path.join(output_dir, f"{stem}_mask.png")
    overlay_path = os.path.join(output_dir, f"{stem}_overlay.png")
    overlay = original.copy()
    overlay[mask > 0] = 0.5 * overlay[mask > 0] + 0.5 * np.array([255.0, 0.0, 0.0])
    for path, image in ((mask_path, mask),
                        (overlay_path, cv2.cvtColor(overlay.astype(np.uint8),
                                                    cv2.COLOR_RGB2BGR))):
        if not cv2.imwrite(path, image):  # OpenCV reports a failed write by returning False
            raise OSError(f"Could not write {path!r} (disk full, or not writable?); free space "
                          "or choose a writable --work_dir.")
    log(f"foreground {100 * np.mean(mask > 0):.1f}% of the image; wrote {mask_path} and "
        f"{overlay_path}")
    return mask_path, overlay_path


def predict_mode(config, log=print):
    """`--mode=predict` (svf_tf/cli/main.py): the episode of the predict settings."""
    options = config.predict
    if not options.query:
        raise ValueError("--mode=predict needs --query, --supports and --support_masks.")
    return predict_episode(config, options.query, options.supports, options.support_masks,
                           class_id=options.class_id,
                           checkpoint_path=config.checkpoint.checkpoint, log=log,
                           adapters=config.checkpoint.adapter)
