"""BaseClassTrackingTask: base-class scores in each epoch record, backbone values counted."""

import keras
import pytest
import tensorflow as tf

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.data.transforms.presets import augment_config
from svf_tf.metrics.base_class_episodes import make_base_class_evaluation
from svf_tf.tasks.base_class_tracking import BaseClassTrackingTask
from svf_tf.tasks.few_shot import FewShotTask
from tests.data.fss_toy_data import toy_fold_lists


def all_foreground(query_image, support_images, support_masks):
    shape = tf.shape(query_image)[:3]
    return tf.stack([tf.zeros(shape), tf.ones(shape)], axis=-1)


def task_with_toy_lists(tmp_path, **kwargs):
    config = ExperimentConfig.from_settings(synthetic=True, train_size=33, test_size=41,
                                            finetune="freeze", cache_dir=str(tmp_path),
                                            work_dir=str(tmp_path / "run"))
    task = BaseClassTrackingTask(config, **kwargs)
    task._lists["train"] = toy_fold_lists(str(tmp_path / "toy"), "train", per_class=3)
    return task


def test_epoch_metrics_add_the_base_class_scores(tmp_path, monkeypatch):
    task = task_with_toy_lists(tmp_path, base_episodes=7)
    monkeypatch.setattr(task, "make_predict_fn", lambda model: all_foreground)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])  # no SVF layer
    metrics = task.make_epoch_metrics(model)()
    expected = make_base_class_evaluation(
        all_foreground, task.fold_lists("train"), 1, augment_config(
            "pascal", crop_size=33, test_size=41), seed=321, num_episodes=7)()
    assert metrics == {"base/miou": pytest.approx(expected["miou"]),
                       "base/fb_iou": pytest.approx(expected["fb_iou"])}
    assert task.summary_fields()["base_episodes"] == {"episodes": 7, "seed": 321}


def test_backbone_values_are_counted_when_the_model_is_built(tmp_path, monkeypatch):
    inputs = keras.Input((3,))
    backbone = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)],
                                name="toy_backbone")  # 3 * 4 + 4 = 16 values
    model = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs)))
    monkeypatch.setattr(FewShotTask, "build_model", lambda self: model)
    task = task_with_toy_lists(tmp_path)
    assert task.build_model() is model
    assert task.summary_fields()["backbone_trainable_values"] == 16
    backbone.trainable = False
    task.build_model()
    assert task.summary_fields()["backbone_trainable_values"] == 0


def test_base_episodes_must_be_a_positive_integer(tmp_path):
    with pytest.raises(ValueError, match="base_episodes=0 must be an integer >= 1"):
        task_with_toy_lists(tmp_path, base_episodes=0)
