"""SVF cost benchmark: one run, side by side, ratios against the plain layer.

    python scripts/benchmark.py --out=benchmark.json

Sections (`--sections`, comma separated):
  layer  One conv layer at ResNet50 conv4_x / conv5_x shapes (60x60, batch 8):
         training step (forward + gradients for the trainable weights and the
         input + SGD update) for a plain trainable Conv2D, SVF compute="kernel"
         and SVF compute="factored" (S trains); inference for plain vs merged
         SVF. Variants of a shape are timed interleaved in one process (ratios
         per round); memory is the peak resident memory a variant's training
         steps add, each variant in its own process.
  build  Time to decompose every conv of ResNet50 (apply_svf on all 53).

Each figure is the median over `--repeats` rounds after warm-up. Compare
ratios, not absolute times: the machine is shared and noisy.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from svf_tf.utils import cli  # noqa: E402

flags.DEFINE_list("sections", ["layer", "build"], "Sections to run: layer, build.")
flags.DEFINE_integer("batch", 8, "Batch size of the layer section.", lower_bound=1)
flags.DEFINE_integer("size", 60, "Feature map side of the layer section.", lower_bound=1)
flags.DEFINE_integer("repeats", 5, "Timed runs per figure (the median is reported).",
                     lower_bound=1)
flags.DEFINE_list("shapes", None, "Subset of layer shapes to run (names below); all if unset.")
flags.DEFINE_string("out", None, "Write the results as JSON to this file.")
flags.DEFINE_string("worker", None, "Internal: run one configuration and print its JSON.")
FLAGS = flags.FLAGS

# (name, input channels, filters, kernel size, dilation) of ResNet50's dilated stages.
LAYER_SHAPES = {
    "conv4_3x3": (256, 256, 3, 2),
    "conv4_1x1_in": (1024, 256, 1, 1),
    "conv4_1x1_out": (256, 1024, 1, 1),
    "conv5_3x3": (512, 512, 3, 4),
    "conv5_1x1_in": (2048, 512, 1, 1),
    "conv5_1x1_out": (512, 2048, 1, 1),
}
TRAIN_VARIANTS = ("plain", "svf_kernel", "svf_factored")
INFER_VARIANTS = ("plain", "svf_merged")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_seconds(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _layer_step(shape_name, variant, mode, batch, size):
    """A compiled step for one layer configuration, and its input."""
    import keras
    import tensorflow as tf

    import svf_tf

    channels, filters, kernel, dilation = LAYER_SHAPES[shape_name]
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation,
                               use_bias=False)
    conv.build((None, size, size, channels))
    layer = conv
    if variant.startswith("svf"):
        compute = "factored" if variant == "svf_factored" else "kernel"
        layer = svf_tf.SVFConv2D.from_conv(conv, compute=compute)
        if variant == "svf_merged":
            layer = svf_tf.merge_svf(keras.Sequential([keras.Input((size, size, channels)),
                                                      layer])).layers[0]
    x = tf.random.normal((batch, size, size, channels))
    if mode == "infer":
        return tf.function(lambda: layer(x))
    variables = layer.trainable_variables
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x)))
        grads = tape.gradient(loss, variables + [x])
        optimizer.apply_gradients(zip(grads[:-1], variables, strict=True))
        return grads[-1]

    return step


def layer_time_worker(shape_name, batch, size, repeats):
    """Times every variant of one shape in this process, interleaved round by round.

    Each round runs every variant once; ratios are taken within a round, so a
    slow-down of the machine affects both sides of a ratio alike.
    """
    steps = {(mode, v): _layer_step(shape_name, v, mode, batch, size)
             for mode, variants in (("train", TRAIN_VARIANTS), ("infer", INFER_VARIANTS))
             for v in variants}
    for step in steps.values():  # compile and warm up
        step().numpy()
        step().numpy()
    rounds = []
    for _ in range(repeats):
        timing = {}
        for key, step in steps.items():
            start = time.perf_counter()
            step().numpy()
            timing[key] = time.perf_counter() - start
        rounds.append(timing)

    def median_of(key):
        return statistics.median(r[key] for r in rounds)

    def ratio(a, b):
        return statistics.median(r[a] / r[b] for r in rounds)

    return {
        "shape": shape_name,
        "train_seconds": {v: median_of(("train", v)) for v in TRAIN_VARIANTS},
        "infer_seconds": {v: median_of(("infer", v)) for v in INFER_VARIANTS},
        "train_ratio_kernel": ratio(("train", "svf_kernel"), ("train", "plain")),
        "train_ratio_factored": ratio(("train", "svf_factored"), ("train", "plain")),
        "train_ratio_kernel_vs_factored": ratio(("train", "svf_kernel"),
                                                ("train", "svf_factored")),
        "infer_ratio_merged": ratio(("infer", "svf_merged"), ("infer", "plain")),
    }


def layer_memory_worker(shape_name, variant, batch, size):
    """Peak resident memory added by training steps of one variant, in MB."""
    step = _layer_step(shape_name, variant, "train", batch, size)
    before = peak_rss_mb()
    for _ in range(3):
        step().numpy()
    return {"shape": shape_name, "variant": variant, "step_peak_mb": peak_rss_mb() - before,
            "peak_rss_mb": peak_rss_mb()}


def build_worker(repeats):
    import keras

    import svf_tf

    model = keras.applications.ResNet50(weights=None, include_top=False,
                                        input_shape=(473, 473, 3))
    seconds = median_seconds(lambda: svf_tf.apply_svf(model), max(1, repeats // 2), warmup=0)
    return {"section": "build", "seconds": seconds, "convs": 53, "peak_rss_mb": peak_rss_mb()}


def run_worker(spec):
    """Runs `spec`: "time:shape:batch:size:repeats", "memory:shape:variant:batch:size" or
    "build:repeats"."""
    parts = spec.split(":")
    if parts[0] == "time":
        return layer_time_worker(parts[1], int(parts[2]), int(parts[3]), int(parts[4]))
    if parts[0] == "memory":
        return layer_memory_worker(parts[1], parts[2], int(parts[3]), int(parts[4]))
    return build_worker(int(parts[1]))


def in_subprocess(spec):
    result = subprocess.run([sys.executable, __file__, f"--worker={spec}"], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark worker {spec} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine_info():
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def layer_section(batch, size, repeats, shapes):
    rows = []
    for shape in shapes:
        row = in_subprocess(f"time:{shape}:{batch}:{size}:{repeats}")
        memory = {v: in_subprocess(f"memory:{shape}:{v}:{batch}:{size}")["step_peak_mb"]
                  for v in TRAIN_VARIANTS}
        row["train_step_peak_mb"] = memory
        row["memory_ratio_kernel"] = memory["svf_kernel"] / max(memory["plain"], 1e-9)
        row["memory_ratio_factored"] = memory["svf_factored"] / max(memory["plain"], 1e-9)
        rows.append(row)
        print(format_layer_row(row), flush=True)
    return rows


def format_layer_row(row):
    t, m = row["train_seconds"], row["train_step_peak_mb"]
    return (f"{row['shape']:<14} plain {t['plain'] * 1e3:7.1f} ms {m['plain']:6.0f} MB | "
            f"kernel x{row['train_ratio_kernel']:.2f} mem x{row['memory_ratio_kernel']:.2f} | "
            f"factored x{row['train_ratio_factored']:.2f} "
            f"mem x{row['memory_ratio_factored']:.2f} | kernel/factored "
            f"x{row['train_ratio_kernel_vs_factored']:.2f} | merged inference "
            f"x{row['infer_ratio_merged']:.2f}")


def main(argv):
    del argv
    if FLAGS.worker:
        print(json.dumps(run_worker(FLAGS.worker)))
        return
    unknown = set(FLAGS.sections) - {"layer", "build"}
    if unknown:
        raise ValueError(f"--sections has unknown value(s) {sorted(unknown)}; use layer, build.")
    shapes = FLAGS.shapes or list(LAYER_SHAPES)
    bad = set(shapes) - set(LAYER_SHAPES)
    if bad:
        raise ValueError(f"--shapes has unknown value(s) {sorted(bad)}; use {list(LAYER_SHAPES)}.")
    results = {"machine": machine_info(), "settings": {
        "batch": FLAGS.batch, "size": FLAGS.size, "repeats": FLAGS.repeats}}
    print(f"machine: {results['machine']}")
    if "layer" in FLAGS.sections:
        print(f"\n[layer] batch {FLAGS.batch}, {FLAGS.size}x{FLAGS.size}, median of "
              f"{FLAGS.repeats}; ratios are SVF / plain trainable conv")
        results["layer"] = layer_section(FLAGS.batch, FLAGS.size, FLAGS.repeats, shapes)
    if "build" in FLAGS.sections:
        results["build"] = in_subprocess(f"build:{FLAGS.repeats}")
        print(f"\n[build] apply_svf on all 53 ResNet50 convs: "
              f"{results['build']['seconds']:.2f} s (target < 10 s)")
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(results, f, indent=2)
        print(f"\nwrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
