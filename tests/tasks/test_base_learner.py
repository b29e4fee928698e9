"""BAM's stage 1 (--mode=train_base) and its hand-over to stage 2 (--base_learner)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.cli.train import train_base
from svf_tf.data import fold_classes, to_base_annotation
from svf_tf.metrics.base_class_iou import class_iou_counts
from svf_tf.tasks.base_learner import BaseLearnerTask
from svf_tf.tasks.few_shot import FewShotTask
from svf_tf.weights.base_learner import build_stage1_model, load_base_learner
from tests.runs.trainer_helpers import tiny_config

STAGE1 = dict(method="bam", epochs=1, steps_per_epoch=2, val_images=4, lr=2.5e-4,
              lr_schedule="poly", poly_multiplier=10.0, backbone_lr_ratio=0.1)


def test_base_annotation_of_a_hand_made_label():
    # Pascal fold 1: novel 6..10, base 1..5 then 11..20 (reference sub_list order).
    label = np.array([[0, 1, 5, 6], [10, 11, 20, 255]], np.uint8)
    expected = np.array([[0, 1, 5, 0], [0, 6, 15, 255]], np.uint8)
    np.testing.assert_array_equal(to_base_annotation(label, fold_classes("pascal", 1)), expected)


def test_base_class_iou_counts_by_hand():
    labels = np.array([[[0, 1, 1, 2, 255]]])
    pred = np.array([[[0, 1, 2, 2, 1]]])  # the last pixel is ignored
    logits = np.eye(3, dtype=np.float32)[pred]
    intersection, union = class_iou_counts(labels, logits)
    np.testing.assert_array_equal(intersection, [1, 1, 1])
    np.testing.assert_array_equal(union, [1, 2, 2])


def test_stage1_reads_every_line_of_the_train_list(synthetic_cache, tmp_path):
    task = BaseLearnerTask(tiny_config(synthetic_cache, tmp_path, **STAGE1))
    root = task.data_root
    with open(os.path.join(root, "ImageSets", "Segmentation", "train.txt")) as f:
        ids = [line.strip() for line in f if line.strip()]
    # Independent: the VOC split file, every image (BAM's BaseData applies no filter).
    assert [os.path.basename(image) for image, _ in task.split_items("train")] == [
        f"{i}.jpg" for i in ids]
    assert task.num_train_images() == len(ids) > len(task_fold_items(task))
    assert len(task.split_items("val")) == STAGE1["val_images"]


def task_fold_items(task):
    """The few-shot (2048-pixel rule) list of the same fold, for comparison."""
    return FewShotTask(task.config).fold_lists("train").items


@pytest.fixture(scope="module")
def stage1_run(synthetic_cache, tmp_path_factory):
    config = tiny_config(synthetic_cache, tmp_path_factory.mktemp("stage1"), **STAGE1)
    return config, train_base(config, tf.distribute.get_strategy(), log=lambda *_: None)


@pytest.mark.slow  # BAM's stage 1 trained end to end (~20 s of set-up, shared by the next two)
def test_train_base_writes_checkpoint_summary_and_stage2_files(stage1_run):
    config, summary = stage1_run
    assert summary["mode"] == "train_base" and summary["steps"] == 2
    assert np.isfinite(summary["history"][0]["loss"])
    assert 0.0 <= summary["best_miou"] <= 1.0
    on_disk = json.loads(open(os.path.join(config.run_dir, "summary.json")).read())
    assert on_disk["best_miou"] == summary["best_miou"]
    for key in ("base_learner_weights", "backbone_weights"):
        assert os.path.isfile(summary[key])


@pytest.mark.slow  # needs the trained stage-1 run
def test_bam_takes_the_stage1_head_and_backbone(stage1_run):
    config, summary = stage1_run
    # Independent of load_base_learner: Keras' own loading of the whole PSPNet file.
    pspnet = build_stage1_model("vgg16", 16)
    pspnet.load_weights(summary["base_learner_weights"])
    bam_config = tiny_config(config.data.cache_dir, config.run.work_dir + "_bam", method="bam",
                             finetune="freeze", weights=summary["backbone_weights"],
                             base_learner=summary["base_learner_weights"])
    bam = FewShotTask(bam_config, log=lambda *_: None).build_model()
    learner = bam.get_layer("learner_base")
    assert not learner.trainable_variables
    for got, want in zip(learner.weights, pspnet.get_layer("pspnet_head").weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=want.path)

    image = np.random.default_rng(0).normal(size=(1, 33, 33, 3)).astype(np.float32)
    feed = {"query_image": image, "support_images": image[:, None],
            "support_masks": np.ones((1, 1, 33, 33), np.float32),
            "class_slot": np.zeros((1,), np.int32)}
    np.testing.assert_allclose(bam(feed, training=False)["base_logits"],
                               pspnet(image, training=False)["logits"], rtol=1e-4, atol=1e-4)


def test_pascal_heads_run_at_ten_times_the_backbone_rate(synthetic_cache, tmp_path):
    task = BaseLearnerTask(tiny_config(synthetic_cache, tmp_path, **STAGE1), log=lambda *_: None)
    model = task.build_model()
    optimizer = task.build_optimizer(model, 10)
    backbone = model.get_layer("vgg16_backbone").trainable_variables
    head = model.get_layer("pspnet_head").trainable_variables
    assert {optimizer.lr_multiplier(v) for v in backbone} == {0.1}
    assert {optimizer.lr_multiplier(v) for v in head} == {1.0}
    # Peak rates: heads 10 x base_lr, backbone base_lr (BAM index_split 0).
    assert float(optimizer.learning_rate) == pytest.approx(10 * 2.5e-4 * (1 - 1 / 10) ** 0.9)


@pytest.mark.slow  # needs the trained stage-1 run
def test_base_learner_file_that_does_not_fit(stage1_run):
    _, summary = stage1_run
    with pytest.raises(ValueError, match="backbone.weights.h5.*does not fit.*--target=pspnet"):
        load_base_learner(summary["backbone_weights"], "vgg16", 15)
    with pytest.raises(ValueError, match="does not fit.*61"):
        load_base_learner(summary["base_learner_weights"], "vgg16", 60)
