"""Exporting a few-shot model as a TF SavedModel (`keras.export.ExportArchive`).

Keras 3's `model.save` writes only `.keras`/`.h5` files; a SavedModel comes
from `Model.export(format="tf_saved_model")` or `ExportArchive` (Keras docs,
"Model export for inference"), and is reloaded with `tf.saved_model.load`.
"""

import keras
import tensorflow as tf

import svf_tf
from svf_tf.heads.episode_inputs import CLASS_SLOT, EpisodeInputs
from svf_tf.runs.restore import adapter_name
from svf_tf.surgery.adapters import svf_layers


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


def _serving_function(merged):
    needs_slot = CLASS_SLOT in [t.name for t in merged.inputs]

    def serve(query_image, support_images, support_masks):
        inputs = [query_image, support_images, support_masks]
        if needs_slot:
            inputs.append(tf.zeros(tf.shape(query_image)[:1], tf.int32))
        return serving_outputs(merged(inputs, training=False))

    return serve


def merged_per_adapter(model, adapters):
    """{endpoint name: merged model}: "serve_<name>" per adapter file, "serve" the first.

    Each file is loaded over `model`'s SVF layers and merged; `model`'s own
    factors are put back afterwards. The merged models share every layer
    that is not an SVF layer, so a SavedModel stores those once.
    """
    names = [adapter_name(p) for p in adapters]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"--adapter: several files are named {repeated[0]!r}; each adapter of one export "
            "needs its own file name (its serving signature is serve_<file name>).")
    variables = [v for _, layer in svf_layers(model) for v in layer._svf_adapted_variables()]
    saved = [keras.ops.convert_to_numpy(v) for v in variables]
    endpoints = {}
    try:
        for name, path in zip(names, adapters, strict=True):
            svf_tf.load_svf_weights(model, path)
            endpoints[f"serve_{name}"] = svf_tf.merge_svf(model)
    finally:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
    return {"serve": endpoints[f"serve_{names[0]}"], **endpoints}


def export_fsss_model(model, path, adapters=()):
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

    With `adapters` (adapter files of `model`'s SVF layers), the SavedModel
    holds one signature per file, `serve_<file name without .svf.npz>`, all
    with the signature above; "serve" is the first file's. The layers that
    are not SVF layers are stored once for all of them.

    Args:
        model: a model from `build_fsss_model` (SVF or not).
        path: output directory.
        adapters: adapter files (`save_svf_weights`) to serve side by side.

    Returns:
        The merged Keras model behind the "serve" signature.
    """
    shot = model_shot(model)
    endpoints = (merged_per_adapter(model, list(adapters)) if adapters
                 else {"serve": svf_tf.merge_svf(model)})
    signature = [
        tf.TensorSpec([None, None, None, 3], tf.float32, name="query_image"),
        tf.TensorSpec([None, shot, None, None, 3], tf.float32, name="support_images"),
        tf.TensorSpec([None, shot, None, None], tf.float32, name="support_masks"),
    ]
    archive = keras.export.ExportArchive()
    tracked = []
    for merged in endpoints.values():
        if all(merged is not other for other in tracked):
            archive.track(merged)
            tracked.append(merged)
    for name, merged in endpoints.items():
        archive.add_endpoint(name, _serving_function(merged), input_signature=signature)
    archive.write_out(path, verbose=False)
    return endpoints["serve"]
