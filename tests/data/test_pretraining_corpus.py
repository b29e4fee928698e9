"""The synthetic pre-training corpus: classes, determinism, labels aligned with images."""

import numpy as np
import pytest

from svf_tf.data.synthetic.pretraining import (
    NUM_PRETRAIN_CLASSES,
    TRAIN_STREAM,
    VAL_STREAM,
    CorpusOptions,
    corpus_class_of,
    corpus_dataset,
    pretrain_class_design,
    render_corpus_image,
)
from svf_tf.data.synthetic.scene import SHAPES, TEXTURES, class_design

OPTIONS = CorpusOptions(size=33, max_objects=4, seed=5)


def test_the_corpus_holds_every_shape_texture_pair_and_the_few_shot_classes():
    pairs = {pretrain_class_design(c) for c in range(1, NUM_PRETRAIN_CLASSES + 1)}
    assert pairs == {(s, t) for s in SHAPES for t in TEXTURES}
    assert pretrain_class_design(1) == ("ellipse", "stripes")
    assert pretrain_class_design(100) == ("blob", "bordered")
    for c in range(1, 21):  # the few-shot dataset's classes (and so the novel ones) are in it
        assert pretrain_class_design(corpus_class_of(c)) == class_design(c)
    assert len({corpus_class_of(c) for c in range(1, 21)}) == 20
    with pytest.raises(ValueError, match="not in 1..100"):
        pretrain_class_design(101)


def test_images_are_a_function_of_seed_stream_and_index():
    image, label, main = render_corpus_image(OPTIONS, TRAIN_STREAM, 3)
    again, label_again, main_again = render_corpus_image(OPTIONS, TRAIN_STREAM, 3)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(label, label_again)
    assert main == main_again
    for other in (render_corpus_image(OPTIONS, TRAIN_STREAM, 4),
                  render_corpus_image(OPTIONS, VAL_STREAM, 3),
                  render_corpus_image(CorpusOptions(size=33, seed=6), TRAIN_STREAM, 3)):
        assert not np.array_equal(other[0], image)


def test_labels_match_images():
    mains, present, edge_ratio, flipped_ratio = [], set(), [], []
    for index in range(40):
        image, label, main = render_corpus_image(OPTIONS, TRAIN_STREAM, index)
        assert image.shape == (33, 33, 3) and image.dtype == np.float32
        assert label.shape == (33, 33)
        values = set(np.unique(label).tolist())
        assert values <= set(range(NUM_PRETRAIN_CLASSES + 1)) | {255}
        # An object-centric crop: the main object is whole and large in it.
        assert np.mean(label == main) >= 0.08
        # The 255 rings lie on object boundaries, where the image changes most: the
        # image gradient there is far above the background's (not for a flipped label).
        gradient = (np.abs(np.diff(image, axis=0))[:, :-1] +
                    np.abs(np.diff(image, axis=1))[:-1]).sum(-1)
        for ratios, labels in ((edge_ratio, label), (flipped_ratio, label[::-1])):
            labels = labels[:-1, :-1]
            ratios.append(gradient[labels == 255].mean() / gradient[labels == 0].mean())
        mains.append(main)
        present |= values - {0, 255}
    assert np.mean(edge_ratio) > 2.5 and np.mean(flipped_ratio) < 2.0
    # Classes are drawn uniformly: 40 images show many distinct pairs.
    assert len(set(mains)) >= 30 and len(present) >= 60


@pytest.mark.parametrize("target", ["dense", "classification"])
def test_the_pipeline_yields_each_image_with_its_own_label(target):
    options = CorpusOptions(size=33, max_objects=3, target=target, seed=2)
    batches = list(corpus_dataset(options, VAL_STREAM, 5, 7, batch_size=3))
    assert len(batches) == 2  # 7 images: two whole batches, the last partial one dropped
    for b, batch in enumerate(batches):
        for i in range(3):
            image, label, main = render_corpus_image(options, VAL_STREAM, 5 + 3 * b + i)
            np.testing.assert_array_equal(batch["image"][i].numpy(), image)
            expected = main - 1 if target == "classification" else label
            np.testing.assert_array_equal(batch["label"][i].numpy(), expected)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="target='boxes'"):
        CorpusOptions(target="boxes")
    with pytest.raises(ValueError, match="max_objects=0"):
        CorpusOptions(max_objects=0)
