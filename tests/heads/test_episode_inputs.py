"""Bad episodes fail at model-call time with a ValueError that names shapes/values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.baseline import build_baseline_model
from svf_tf.heads.episode_inputs import EpisodeInputs, episode_inputs
from tests.helpers import run_layer_test
from tests.models.fake_backbone import fake_backbone


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_baseline_model(fake_backbone("resnet", "freeze"), shot=2)


def episode(shot=2, batch=1, size=17, support_size=None, mask_shot=None, mask_values=(0, 1)):
    rng = np.random.default_rng(0)
    support_size = support_size or size
    return [rng.normal(size=(batch, size, size, 3)).astype("float32"),
            rng.normal(size=(batch, shot, support_size, support_size, 3)).astype("float32"),
            rng.choice(mask_values, size=(batch, mask_shot or shot, support_size, support_size))
            .astype("int32")]


@pytest.mark.parametrize("kwargs,message", [
    (dict(mask_shot=1), r"support_images has K=2 shots but support_masks has K=1"),
    (dict(shot=3), r"built for shot=2 but the supports have K=3"),
    (dict(size=16), r"query_image is 16x16 .*\(size - 1\) % 8 == 0"),
    (dict(support_size=24), r"support_images is 24x24"),
    (dict(mask_values=(0, 1, 2)), r"support_masks may only hold \(0, 1, 255\).*\[2\]"),
])
def test_bad_episodes_raise_value_error(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model(episode(**kwargs))


def test_other_shape_errors_name_the_shapes(model):
    query, supports, masks = episode()
    with pytest.raises(ValueError, match=r"support_masks \(1, 2, 9, 9\)"):
        model([query, supports, masks[:, :, :9, :9]])
    with pytest.raises(ValueError, match="Batch sizes differ"):
        model([np.concatenate([query, query]), supports, masks])
    fractional = masks.astype("float32") * 0.5
    with pytest.raises(ValueError, match=r"\[0.5\]"):
        model([query, supports, fractional])


def test_in_a_graph_the_checks_become_assertions(model):
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3]),
                                  tf.TensorSpec([None, None, None, None, 3]),
                                  tf.TensorSpec([None, None, None, None])])
    def run(query, supports, masks):
        return model([query, supports, masks])["logits"]

    query, supports, masks = episode()
    assert run(query, supports, masks.astype("float32")).shape == (1, 17, 17, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="0, 1, 255"):
        run(query, supports, masks.astype("float32") * 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="K differs"):
        q, s, m = episode(shot=3)
        run(q, s, m.astype("float32"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(size - 1\) % 8"):
        q, s, m = episode(size=16)
        run(q, s, m.astype("float32"))


def test_ignore_label_in_supports_is_background():
    layer = EpisodeInputs(1)
    masks = np.random.default_rng(0).choice([0, 1, 255], size=(1, 1, 9, 9)).astype("float32")
    _, flat, foreground = layer([np.zeros((1, 9, 9, 3), "float32"),
                                 np.zeros((1, 1, 9, 9, 3), "float32"), masks])
    assert flat.shape == (1, 9, 9, 3)
    np.testing.assert_array_equal(foreground[0, ..., 0], masks[0, 0] == 1)


def test_supports_are_flattened_episode_major():
    layer = EpisodeInputs(3)
    supports = np.arange(6, dtype="float32").reshape(2, 3, 1, 1, 1) * np.ones((1, 1, 9, 9, 3))
    _, flat, _ = layer([np.zeros((2, 9, 9, 3), "float32"), supports.astype("float32"),
                        np.zeros((2, 3, 9, 9), "float32")])
    np.testing.assert_array_equal(flat[:, 0, 0, 0], np.arange(6))


def test_a_pipeline_dict_with_extra_keys_is_read_by_name(model):
    query, supports, masks = episode()
    expected = model([query, supports, masks])["logits"]
    batch = {"support_masks": masks, "class_id": np.array([3]), "query_mask": masks[:, 0],
             "query_image": query, "support_images": supports}
    np.testing.assert_allclose(model(batch)["logits"], expected, rtol=1e-6)


def test_input_builder_and_bad_shot():
    with pytest.raises(ValueError, match=r"image_size=\(472, 473\)"):
        episode_inputs((472, 473))
    names = [t.name for t in episode_inputs((33, 33), with_class_slot=True)]
    assert names == ["query_image", "support_images", "support_masks", "class_slot"]
    with pytest.raises(ValueError, match="shot"):
        EpisodeInputs(0)


def test_a_model_built_for_a_fixed_size():
    model = build_baseline_model(fake_backbone("vgg", "freeze"), 1, image_size=(33, 33))
    assert model.output["logits"].shape == (None, 33, 33, 2)
    assert model(episode(shot=1, size=33))["logits"].shape == (1, 33, 33, 2)
    with pytest.raises(ValueError, match=r"\(1, 41, 41, 3\)"):
        model(episode(shot=1, size=41))


def test_layer_harness():
    rng = np.random.default_rng(5)
    query = rng.normal(size=(1, 9, 9, 3)).astype("float32")
    supports = rng.normal(size=(1, 2, 9, 9, 3)).astype("float32")
    masks = rng.choice([0, 1, 255], size=(1, 2, 9, 9)).astype("int32")
    _, (out_query, flat, foreground) = run_layer_test(
        lambda: EpisodeInputs(2, name="episode_inputs"), [query, supports, masks],
        expected_trainable=0, expected_non_trainable=0,
        expected_output_shapes=[(1, 9, 9, 3), (2, 9, 9, 3), (2, 9, 9, 1)])
    np.testing.assert_array_equal(out_query, query)
    np.testing.assert_array_equal(flat, supports[0])
    np.testing.assert_array_equal(foreground[..., 0], masks[0] == 1)
