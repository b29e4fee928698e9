"""The transfer check of synthetic pre-training: PFENet's prior mask as a training-free segmenter.

PFENet (`model/PFENet.py`, `PFENet.forward`) computes, without any
training, a prior for the query: the cosine similarity of every query layer4
position to the masked support's layer4 positions, max over the support,
min-max normalised (`svf_tf.heads.prior_mask.PriorMask`). Thresholded at 0.5
it is a segmentation, and its few-shot mIoU on the novel classes measures how
well the backbone's features tell an object class from others by themselves:
the quantity ImageNet pre-training provides and the few-shot heads build on.
"""

import tensorflow as tf

from svf_tf.data.episodes.sampling import make_test_episodes
from svf_tf.data.lists.fold_lists import build_fold_lists
from svf_tf.data.pipeline import make_test_dataset
from svf_tf.data.transforms.presets import augment_config
from svf_tf.heads.prior_mask import PriorMask
from svf_tf.metrics.evaluation import evaluate_episodes
from svf_tf.ops.align_corners_resize import resize_align_corners


def novel_episodes(data_root, cache_dir, *, fold=0, shot=1, seed=321, count=100):
    """(test episodes of the fold's novel classes, number of novel classes)."""
    lists = build_fold_lists("pascal", data_root, fold, "val", cache_dir=cache_dir,
                             progress=False)
    return make_test_episodes(lists, shot, seed, count), len(lists.classes)


def prior_mask_miou(backbone, episodes, num_classes, size):
    """Few-shot mIoU of the thresholded prior mask of `backbone` on `episodes`.

    Args:
        backbone: a `build_backbone` model (image -> {"layer4": ...}).
        episodes: 1-shot or k-shot test episodes (the k priors are averaged).
        num_classes: novel-class slots of the fold.
        size: the test resize (e.g. 65).

    Returns:
        The report of `evaluate_episodes` (its "miou", "fb_iou", ...).
    """
    shot = episodes[0].shot
    prior_layer = PriorMask(shot)

    @tf.function(reduce_retracing=True)
    def predict(query_image, support_images, support_masks):
        query = backbone(query_image, training=False)["layer4"]
        flat = tf.reshape(support_images, [-1, size, size, 3])
        support = backbone(flat, training=False)["layer4"]
        masks = tf.cast(tf.reshape(support_masks, [-1, size, size, 1]) == 1, tf.float32)
        priors = prior_layer([query, support, masks])
        prior = tf.reduce_mean(tf.reshape(priors, [-1, shot, *priors.shape[1:]]), axis=1)
        prior = resize_align_corners(prior, (size, size))
        return tf.concat([tf.fill(tf.shape(prior), 0.5), prior], axis=-1)

    config = augment_config("pascal", crop_size=size, test_size=size)
    return evaluate_episodes(predict, make_test_dataset(episodes, config), num_classes,
                             verbose=0)
