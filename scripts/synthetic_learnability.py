"""Is few-shot segmentation of the synthetic dataset learnable, and not trivial?

    python scripts/synthetic_learnability.py --out=learnability.json

Scores on the test episodes of a fold's novel classes (never seen in
training), with the papers' mIoU at label resolution:

1. Shortcuts, from the labels (`svf_tf.data.synthetic.baselines`): all
   foreground, every object and the largest object (perfect segmenters that
   ignore the support), and perfect shape-only and texture-only matchers.
   The support-agnostic ones bound what a model gets without comparing the
   query with the support.
2. A small prototype network (5 convolutions, masked average pooling of the
   support into foreground and background prototypes, cosine similarity, as
   PANet does), before and after training from scratch on the fold's base
   classes through the project's pipeline (`make_train_dataset` with the
   training augmentation, `make_test_dataset`, `evaluate_episodes`).

Learnable: the trained probe ends far above its untrained self and above
"all foreground". Not trivial: the support-agnostic oracles stay near 40-50%
and the probe stays far below the single-cue oracles. The probe is a
yardstick for the dataset, not one of the papers' models; it trains in a few
minutes on 2 CPU cores, where the papers' ResNet-50 models need ImageNet
weights and hours.
"""

import json
import os
import time

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.atomic_files import write_file_atomically  # noqa: E402
from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402

# The flags this probe shares with main.py, from the same settings
# (svf_tf/config/experiment.py); --scale_range unset means the probe's 0.2,0.3.
define_flags(names=("fold", "shot", "seed", "batch_size", "cache_dir", "scale_range"))
PROBE_SCALE_RANGE = (0.2, 0.3)  # the 160-320 px images at the scale of the 65 px test resize
flags.DEFINE_integer("size", 65, "Training crop and test size ((size - 1) % 8 == 0).",
                     lower_bound=17)
flags.DEFINE_integer("steps", 1500, "Training steps of the probe.", lower_bound=1)
flags.DEFINE_float("lr", 1e-3, "Adam learning rate of the probe.", lower_bound=0.0)
flags.DEFINE_integer("episodes", 1000, "Test episodes (the papers' 1000).", lower_bound=1)
flags.DEFINE_string("out", None, "Also write the results to this JSON file.")
FLAGS = flags.FLAGS

ROWS = (("all_foreground", "all foreground", "no"),
        ("every_object", "every object (oracle)", "no"),
        ("largest_object", "largest object (oracle)", "no"),
        ("same_shape", "same shape (oracle)", "shape only"),
        ("same_texture", "same texture (oracle)", "texture only"),
        ("probe_untrained", "probe, untrained", "yes"),
        ("probe_trained", "probe, trained", "yes"))


def build_probe():
    """The prototype network: a 5-conv encoder (1/4 resolution) and cosine logits."""
    import keras
    import tensorflow as tf

    from svf_tf.ops.masked_average_pooling import masked_average_pooling

    encoder = keras.Sequential(name="encoder")
    for filters, stride, rate in ((32, 2, 1), (64, 1, 1), (64, 2, 1), (64, 1, 2), (64, 1, 4)):
        encoder.add(keras.layers.Conv2D(filters, 3, stride, "same", dilation_rate=rate,
                                        use_bias=False))
        encoder.add(keras.layers.BatchNormalization())
        encoder.add(keras.layers.ReLU())
    encoder.add(keras.layers.Conv2D(64, 1))

    def forward(query_image, support_images, support_masks, training=False):
        batch, shot = tf.shape(support_images)[0], tf.shape(support_images)[1]
        flat = tf.reshape(support_images, tf.concat([[batch * shot], tf.shape(support_images)[2:]],
                                                    0))
        query, support = encoder(query_image, training=training), encoder(flat, training=training)
        masks = tf.cast(tf.reshape(support_masks, tf.concat([[batch * shot],
                                                             tf.shape(support_masks)[2:], [1]],
                                                            0)) == 1, tf.float32)
        masks = tf.image.resize(masks, tf.shape(support)[1:3], "bilinear")
        pooled = tf.stack([masked_average_pooling(support, 1.0 - masks)[:, 0, 0],
                           masked_average_pooling(support, masks)[:, 0, 0]], 1)
        pooled = tf.reduce_mean(tf.reshape(pooled, [batch, shot, 2, -1]), 1)  # k-shot mean
        similarity = tf.einsum("bhwc,bnc->bhwn", tf.math.l2_normalize(query, -1),
                               tf.math.l2_normalize(pooled, -1))
        return tf.image.resize(10.0 * similarity, tf.shape(query_image)[1:3], "bilinear")

    return encoder, forward


def train_probe(encoder, forward, train_lists, config, *, shot, steps, batch_size, lr, seed,
                log):
    import keras
    import numpy as np
    import tensorflow as tf

    from svf_tf.data.pipeline import make_train_dataset
    from svf_tf.models.losses import masked_cross_entropy

    optimizer = keras.optimizers.Adam(lr)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            logits = forward(batch["query_image"], batch["support_images"],
                             batch["support_masks"], training=True)
            loss = masked_cross_entropy(logits, batch["query_mask"])
        variables = encoder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    progbar = keras.utils.Progbar(steps, stateful_metrics=["loss"])
    done, epoch, recent = 0, 0, []
    while done < steps:
        for batch in make_train_dataset(train_lists, shot, config, seed=seed, epoch=epoch,
                                        batch_size=batch_size):
            recent = (recent + [float(step(batch))])[-50:]
            done += 1
            progbar.update(done, [("loss", float(np.mean(recent)))])
            if done == steps:
                break
        epoch += 1
    log(f"trained {steps} steps, last-50 loss {np.mean(recent):.3f}")


def format_table(result):
    lines = [f"{'strategy':<26} {'uses the support':<17} {'mIoU':>6}"]
    for key, label, support in ROWS:
        lines.append(f"{label:<26} {support:<17} {100 * result['miou'][key]:6.2f}")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    if FLAGS.out:
        paths.check_output_file(FLAGS.out, "--out")
    import keras
    import tensorflow as tf

    from svf_tf.data.cache import check_cache_dir
    from svf_tf.data.episodes.sampling import make_test_episodes
    from svf_tf.data.lists.fold_lists import build_fold_lists
    from svf_tf.data.pipeline import make_test_dataset
    from svf_tf.data.synthetic.baselines import baseline_miou
    from svf_tf.data.synthetic.dataset import ensure_synthetic_dataset
    from svf_tf.data.transforms.presets import augment_config
    from svf_tf.metrics.evaluation import evaluate_episodes

    check_cache_dir(FLAGS.cache_dir)
    start = time.time()
    scale_range = FLAGS.scale_range or PROBE_SCALE_RANGE
    root = ensure_synthetic_dataset(
        None if FLAGS.cache_dir is None else os.path.join(FLAGS.cache_dir, "synthetic_pascal"))
    lists = {split: build_fold_lists("pascal", root, FLAGS.fold, split,
                                     cache_dir=FLAGS.cache_dir, progress=False)
             for split in ("train", "val")}
    config = augment_config("pascal", crop_size=FLAGS.size, test_size=FLAGS.size,
                            scale_range=scale_range)
    episodes = make_test_episodes(lists["val"], FLAGS.shot, FLAGS.seed, FLAGS.episodes)
    num_classes = len(lists["val"].classes)
    miou = baseline_miou(episodes, num_classes)

    keras.utils.set_random_seed(FLAGS.seed)
    encoder, forward = build_probe()
    predict = tf.function(lambda q, s, m: forward(q, s, m), reduce_retracing=True)

    def score():
        return evaluate_episodes(predict, make_test_dataset(episodes, config), num_classes,
                                 verbose=0)["miou"]

    miou["probe_untrained"] = score()
    print(f"synthetic dataset {root}, fold {FLAGS.fold}, {FLAGS.shot}-shot: "
          f"{len(lists['train'].items)} training images (base classes), {FLAGS.episodes} "
          f"test episodes (novel classes {list(lists['val'].classes)})")
    train_probe(encoder, forward, lists["train"], config, shot=FLAGS.shot, steps=FLAGS.steps,
                batch_size=FLAGS.batch_size, lr=FLAGS.lr, seed=FLAGS.seed, log=print)
    miou["probe_trained"] = score()
    result = {"fold": FLAGS.fold, "shot": FLAGS.shot, "size": FLAGS.size,
              "scale_range": list(scale_range), "steps": FLAGS.steps,
              "batch_size": FLAGS.batch_size, "episodes": FLAGS.episodes, "seed": FLAGS.seed,
              "miou": miou, "seconds": round(time.time() - start, 1)}
    print(format_table(result))
    print(f"{result['seconds'] / 60:.1f} min")
    if FLAGS.out:
        write_file_atomically(FLAGS.out, json.dumps(result, indent=2))
        print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
