"""Exporting a few-shot model as a TF SavedModel (`keras.export.ExportArchive`).

Keras 3's `model.save` writes only `.keras`/`.h5` files; a SavedModel comes
from `Model.export(format="tf_saved_model")` or `ExportArchive` (Keras docs,
"Model export for inference"), and is reloaded with `tf.saved_model.load`.
"""

import keras
import tensorflow as tf

import svf_tf
from svf_tf.heads.episode_inputs import CLASS_SLOT, EpisodeInputs


def model_shot(model):
    """The K a few-shot model was built for (from its `EpisodeInputs` layer)."""
    for layer in model.layers:
        if isinstance(layer, EpisodeInputs):
            return layer.shot
    raise ValueError(
        f"model '{model.name}' has no EpisodeInputs layer; export_fsss_model takes a model "
        "from svf_tf.models (build_fsss_model).")


def serving_outputs(outputs):
    """Flattens the output dict for a signature: lists become "name_0", "name_1", ..."""
    flat = {}
    for key, value in outputs.items():
        if isinstance(value, (list, tuple)):
            flat.update({f"{key}_{i}": v for i, v in enumerate(value)})
        else:
            flat[key] = value
    return flat


def export_fsss_model(model, path):
    """Writes `model`, SVF layers merged, as a SavedModel with a "serve" signature.

    The SVF layers are folded into plain Conv2D (`svf_tf.merge_svf`), so the
    artifact computes what the trained model computes at the original cost.
    The signature takes (query_image [B, H, W, 3] float32, support_images
    [B, K, H, W, 3] float32, support_masks [B, K, H, W] float32) with B, H, W
    unknown and K the model's shot, runs the model in inference mode (BAM's
    class_slot is then unused and fed zeros) and returns the output dict
    (lists flattened to "aux_logits_0", ...). Load it with
    `tf.saved_model.load(path).serve(query, supports, masks)`; svf_tf is not
    needed to load it.

    Args:
        model: a model from `build_fsss_model` (SVF or not).
        path: output directory.

    Returns:
        The merged Keras model that was exported.
    """
    shot = model_shot(model)
    merged = svf_tf.merge_svf(model)
    needs_slot = CLASS_SLOT in [t.name for t in merged.inputs]
    signature = [
        tf.TensorSpec([None, None, None, 3], tf.float32, name="query_image"),
        tf.TensorSpec([None, shot, None, None, 3], tf.float32, name="support_images"),
        tf.TensorSpec([None, shot, None, None], tf.float32, name="support_masks"),
    ]

    def serve(query_image, support_images, support_masks):
        inputs = [query_image, support_images, support_masks]
        if needs_slot:
            inputs.append(tf.zeros(tf.shape(query_image)[:1], tf.int32))
        return serving_outputs(merged(inputs, training=False))

    archive = keras.export.ExportArchive()
    archive.track(merged)
    archive.add_endpoint("serve", serve, input_signature=signature)
    archive.write_out(path, verbose=False)
    return merged
