"""The smallest end-to-end use of the SVF library on a plain Keras model.

    python examples/svf_demo.py --backbone=vgg16 --image_size=97 --steps=5 --work_dir=/tmp/svf_demo


Decomposes stages 3-5 of a Keras ResNet50 (or blocks 3-5 of VGG16), checks
that the untouched SVF model reproduces the original, trains only the
singular values for a few steps, merges them back into plain convolutions,
saves the adapter file and exports a SavedModel.
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from svf_tf.surgery import apply_svf, merge_svf, save_svf_weights, svf_summary
from svf_tf.weights.pretrained import resolve_weights

_APPS = {"resnet50": (keras.applications.ResNet50, r"conv[345]_block"),
         "vgg16": (keras.applications.VGG16, r"block[345]_conv")}


def cached_imagenet_weights(backbone):
    """Path of Keras' cached ImageNet weights for `backbone`, or None (no download)."""
    try:
        return resolve_weights("imagenet", backbone, download=False)
    except (FileNotFoundError, ValueError):
        return None


def run_svf_demo(work_dir, backbone="resnet50", image_size=97, steps=5, batch_size=2, seed=321,
                 log=print):
    """Runs the demo and returns its summary (also written to work_dir/summary.json)."""
    if backbone not in _APPS:
        raise ValueError(f"backbone={backbone!r} is not known; use one of {sorted(_APPS)}.")
    keras.utils.set_random_seed(seed)
    os.makedirs(work_dir, exist_ok=True)
    app, stages = _APPS[backbone]
    weights = cached_imagenet_weights(backbone)
    log(f"{backbone}: " + (f"ImageNet weights from {weights}" if weights else
                           "no ImageNet weights in Keras' cache, random initialisation"))
    model = app(weights=weights, include_top=False, input_shape=(image_size, image_size, 3))
    model.trainable = False  # BatchNorm and every plain layer stay frozen

    start = time.perf_counter()
    svf_model = apply_svf(model, filters=stages)
    svd_seconds = time.perf_counter() - start
    summary = svf_summary(svf_model)
    log(str(summary))

    images = tf.random.uniform((batch_size, image_size, image_size, 3), 0, 255, seed=seed)
    original = model(images, training=False)
    reproduction = float(tf.reduce_max(tf.abs(svf_model(images) - original))
                         / tf.reduce_max(tf.abs(original)))
    # A toy target the singular values can reach: the original features, 10 % stronger.
    target = 1.1 * original
    optimizer = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    variables = svf_model.trainable_variables

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(svf_model(images, training=False) - target))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    losses = []
    progress = keras.utils.Progbar(steps, stateful_metrics=["loss"])
    for step in range(steps):
        losses.append(float(train_step()))
        progress.update(step + 1, [("loss", losses[-1])])

    merged = merge_svf(svf_model)
    merge_error = float(tf.reduce_max(tf.abs(merged(images) - svf_model(images))))
    adapter = save_svf_weights(svf_model, os.path.join(work_dir, "adapter.svf.npz"))
    export_dir = os.path.join(work_dir, "saved_model")
    merged.export(export_dir, format="tf_saved_model", verbose=False)

    result = {
        "backbone": backbone,
        "weights": weights or "random",
        "image_size": image_size,
        "svf_layers": len(summary.rows),
        "svf_trainable_values": summary.svf_trainable_values,
        "svf_share_of_parameters": summary.svf_share,
        "svd_seconds": round(svd_seconds, 2),
        "untouched_relative_error": reproduction,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "merged_max_abs_error": merge_error,
        "adapter_file": adapter,
        "adapter_bytes": os.path.getsize(adapter),
        "saved_model": export_dir,
        "work_dir": os.path.abspath(work_dir),
    }
    with open(os.path.join(work_dir, "summary.json"), "w") as f:
        json.dump(result, f, indent=2)
    width = max(len(k) for k in result)
    log("\n".join(f"{k:<{width}}  {v}" for k, v in result.items()))
    return result


if __name__ == "__main__":
    from absl import flags

    from svf_tf.cli.errors import run

    flags.DEFINE_string("work_dir", "runs/svf_demo", "Output directory.")
    flags.DEFINE_enum("backbone", "resnet50", sorted(_APPS), "Keras application to adapt.")
    flags.DEFINE_integer("image_size", 97, "Input size.", lower_bound=32)
    flags.DEFINE_integer("steps", 5, "Training steps on the singular values.", lower_bound=0)
    flags.DEFINE_integer("batch_size", 2, "Images per step.", lower_bound=1)
    flags.DEFINE_integer("seed", 321, "Random seed.", lower_bound=0)
    FLAGS = flags.FLAGS

    def main(argv):
        if len(argv) > 1:
            raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
        tf.get_logger().setLevel("ERROR")
        run_svf_demo(FLAGS.work_dir, backbone=FLAGS.backbone, image_size=FLAGS.image_size,
                     steps=FLAGS.steps, batch_size=FLAGS.batch_size, seed=FLAGS.seed)

    run(main)
