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
  model  The whole baseline model (1-shot, --backbone, default ResNet-50) at
         --model_size: training step time and peak memory for a frozen backbone, SVF (S of layer2-4:
         the package default, the paper's all-factored form and the
         all-kernel form), partial fine-tuning of layer2-4 and full
         fine-tuning, each with and without XLA (`jit_compile`); and inference
         of the plain model against the merged SVF model (`merge_svf`).
  data   Episodes per second of the training input pipeline (1-shot and
         5-shot, with augmentation, at --data_size, from the synthetic
         dataset on disk) against the episodes per second the SVF training
         step consumes at that size, and of the test path (evaluation).

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

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.atomic_files import write_file_atomically  # noqa: E402
from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402

flags.DEFINE_list("sections", ["layer", "build", "model", "data"],
                  "Sections to run: layer, build, model, data.")
flags.DEFINE_integer("model_size", 129, "Input side of the model section ((size-1) % 8 == 0).",
                     lower_bound=17)
flags.DEFINE_integer("model_batch", 4, "Episodes per step in the model section.", lower_bound=1)
flags.DEFINE_list("model_variants", ["freeze", "svf", "svf_paper", "svf_kernel", "part", "full"],
                  "Model-section variants (part is the reference of the ratios and always runs).")
flags.DEFINE_list("xla", ["off", "on"], "Model section: run without and/or with jit_compile.")
flags.DEFINE_bool("memory", True, "Model section: also measure each variant's peak memory "
                  "(one process per variant).")
define_flags(names=("backbone",))  # main.py's --backbone: the model and data sections' one
flags.DEFINE_integer("data_size", 473, "Input side of the data section (the paper's 473).",
                     lower_bound=17)
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


def interleaved_rounds(functions, repeats, warmup=2):
    """Times every function once per round, round after round, after `warmup` calls each.

    Ratios taken within a round see the same machine load on both sides.

    Returns:
        A list of `repeats` dicts {name: seconds}.
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    rounds = []
    for _ in range(repeats):
        timing = {}
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            timing[name] = time.perf_counter() - start
        rounds.append(timing)
    return rounds


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
    rounds = interleaved_rounds(
        {key: (lambda step=step: step().numpy()) for key, step in steps.items()}, repeats)

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


# "svf" is the package default (S of layer2-4 in the factored form, the
# decomposed but frozen layer0-1 as one conv each); "svf_paper" runs every
# decomposed layer in the factored form, as Algorithm 1 / the authors' code;
# "svf_kernel" composes the kernel in every layer (Keras' LoRA pattern).
MODEL_VARIANTS = {
    "freeze": {"finetune": "freeze"},
    "svf": {"finetune": "svf", "svf_compute": "factored"},
    "svf_paper": {"finetune": "svf", "svf_compute": "factored"},
    "svf_kernel": {"finetune": "svf", "svf_compute": "kernel"},
    "part": {"finetune": "part"},
    "full": {"finetune": "full", "finetune_stages": (0, 1, 2, 3, 4), "train_bn": False},
}


def _model_config(variant, size, batch, jit, **extra):
    from svf_tf.config.experiment import ExperimentConfig

    options = dict(MODEL_VARIANTS[variant])
    if FLAGS.backbone == "resnet50":
        options["stem"] = "keras"
    if options["finetune"] == "svf":
        options["svf_rank_multiple"] = 1
    return ExperimentConfig.from_settings(synthetic=True, backbone=FLAGS.backbone,
                                          train_size=size, test_size=size, batch_size=batch,
                                          jit_compile=jit, **options, **extra)


def _random_batch(size, batch, shot=1):
    import numpy as np

    rng = np.random.default_rng(0)
    return {"query_image": rng.normal(size=(batch, size, size, 3)).astype("float32"),
            "support_images": rng.normal(size=(batch, shot, size, size, 3)).astype("float32"),
            "support_masks": rng.integers(0, 2, (batch, shot, size, size)).astype("int32"),
            "query_mask": rng.integers(0, 2, (batch, size, size)).astype("int32"),
            "class_slot": np.zeros((batch,), "int32")}


def _model_step(variant, size, batch, jit):
    """The real training step (FewShotTask) of one variant, on a fixed random batch."""
    import tensorflow as tf

    from svf_tf.tasks.few_shot import FewShotTask

    task = FewShotTask(_model_config(variant, size, batch, jit), log=lambda *_: None)
    strategy = tf.distribute.get_strategy()
    model = task.build_model()
    if variant == "svf_paper":
        from svf_tf.layers import SVFConv2D
        from svf_tf.surgery.layer_paths import iter_layers

        for _, layer in iter_layers(model):
            if isinstance(layer, SVFConv2D):
                layer.compute = "factored"
    optimizer = task.build_optimizer(model, total_steps=100)
    step = task.make_train_step(model, optimizer, strategy)
    data = {k: tf.constant(v) for k, v in _random_batch(size, batch).items()}
    return lambda: step(data)["loss"].numpy()


def model_time_worker(size, batch, jit, repeats, variants):
    """Every variant in this process, timed interleaved round by round."""
    steps = {v: _model_step(v, size, batch, jit) for v in variants}
    rounds = interleaved_rounds(steps, repeats)
    return {
        "jit_compile": jit,
        "seconds": {v: statistics.median(r[v] for r in rounds) for v in steps},
        "ratio_to_part": {v: statistics.median(r[v] / r["part"] for r in rounds)
                          for v in steps},
        "kernel_over_factored": (statistics.median(r["svf_kernel"] / r["svf"] for r in rounds)
                                 if {"svf", "svf_kernel"} <= set(steps) else None),
        "svf_over_paper": (statistics.median(r["svf"] / r["svf_paper"] for r in rounds)
                           if {"svf", "svf_paper"} <= set(steps) else None),
    }


def model_infer_worker(size, batch, repeats):
    """Inference of the plain (frozen-backbone) model against the merged SVF model."""
    import tensorflow as tf

    import svf_tf
    from svf_tf.tasks.few_shot import FewShotTask

    data = _random_batch(size, batch)
    functions = {}
    for name, variant in (("plain", "freeze"), ("svf_merged", "svf")):
        task = FewShotTask(_model_config(variant, size, batch, False), log=lambda *_: None)
        model = task.build_model()
        if variant == "svf":
            model = svf_tf.merge_svf(model)
        predict = task.make_predict_fn(model)
        inputs = [tf.constant(data[k]) for k in ("query_image", "support_images",
                                                   "support_masks")]
        functions[name] = lambda predict=predict, inputs=inputs: predict(*inputs).numpy()
    rounds = interleaved_rounds(functions, repeats)
    return {"seconds": {k: statistics.median(r[k] for r in rounds) for k in functions},
            "ratio_merged": statistics.median(r["svf_merged"] / r["plain"] for r in rounds)}


def model_memory_worker(variant, size, batch, jit):
    step = _model_step(variant, size, batch, jit)
    before = peak_rss_mb()
    for _ in range(3):
        step()
    return {"variant": variant, "jit_compile": jit, "step_peak_mb": peak_rss_mb() - before}


def data_worker(size, repeats):
    """Input pipeline and evaluation throughput against the SVF step's consumption."""
    from svf_tf.data import build_fold_lists, ensure_synthetic_dataset
    from svf_tf.data.episodes.episode_files import load_or_create_test_episodes
    from svf_tf.data.pipeline import (
        make_test_dataset,
        make_train_dataset,
        measure_episodes_per_second,
    )
    from svf_tf.data.transforms.presets import augment_config
    from svf_tf.metrics.evaluation import evaluate_episodes
    from svf_tf.tasks.few_shot import FewShotTask

    root = ensure_synthetic_dataset()
    train = build_fold_lists("pascal", root, 0, "train", progress=False)
    val = build_fold_lists("pascal", root, 0, "val", progress=False)
    config = augment_config("pascal", crop_size=size, test_size=size)
    result = {"size": size}
    for shot in (1, 5):
        dataset = make_train_dataset(train, shot, config, seed=321, epoch=0, batch_size=8)
        result[f"pipeline_{shot}shot_episodes_per_s"] = measure_episodes_per_second(
            dataset, num_batches=max(4, repeats))
    batch = 2
    step = _model_step("svf", size, batch, False)
    step()
    seconds = median_seconds(step, max(2, repeats // 2), warmup=1)
    result["svf_step_seconds"] = seconds
    result["svf_step_episodes_per_s"] = batch / seconds
    result["pipeline_over_consumption_1shot"] = (result["pipeline_1shot_episodes_per_s"]
                                                 / result["svf_step_episodes_per_s"])
    task = FewShotTask(_model_config("svf", size, 1, False), log=lambda *_: None)
    model = task.build_model()
    import tempfile

    episodes = load_or_create_test_episodes(
        os.path.join(tempfile.mkdtemp(), "episodes.jsonl"), val, shot=1, seed=321,
        num_episodes=20)
    report = evaluate_episodes(task.make_predict_fn(model), make_test_dataset(episodes, config),
                               num_classes=5, verbose=0)
    result["eval_episodes_per_s"] = report["episodes_per_second"]
    return result


def run_worker(spec):
    """Runs `spec`: "time:shape:batch:size:repeats", "memory:shape:variant:batch:size" or
    "build:repeats"."""
    parts = spec.split(":")
    if parts[0] == "time":
        return layer_time_worker(parts[1], int(parts[2]), int(parts[3]), int(parts[4]))
    if parts[0] == "memory":
        return layer_memory_worker(parts[1], parts[2], int(parts[3]), int(parts[4]))
    if parts[0] == "model_time":
        return model_time_worker(int(parts[1]), int(parts[2]), parts[3] == "1", int(parts[4]),
                                 parts[5].split("+"))
    if parts[0] == "model_infer":
        return model_infer_worker(int(parts[1]), int(parts[2]), int(parts[3]))
    if parts[0] == "model_memory":
        return model_memory_worker(parts[1], int(parts[2]), int(parts[3]), parts[4] == "1")
    if parts[0] == "data":
        return data_worker(int(parts[1]), int(parts[2]))
    return build_worker(int(parts[1]))


def in_subprocess(spec):
    result = subprocess.run([sys.executable, __file__, f"--worker={spec}",
                             f"--backbone={FLAGS.backbone}"], capture_output=True, text=True,
                            check=False)
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


def model_section(size, batch, repeats, variants, xla, memory=True):
    rows = []
    variants = ["part"] + [v for v in MODEL_VARIANTS if v in variants and v != "part"]
    for jit in [mode == "on" for mode in xla]:
        row = in_subprocess(f"model_time:{size}:{batch}:{int(jit)}:{repeats}:"
                            + "+".join(variants))
        if memory:
            row["step_peak_mb"] = {v: in_subprocess(
                f"model_memory:{v}:{size}:{batch}:{int(jit)}")["step_peak_mb"] for v in variants}
            part_mb = max(row["step_peak_mb"]["part"], 1e-9)
            row["memory_ratio_to_part"] = {v: m / part_mb for v, m in row["step_peak_mb"].items()}
        rows.append(row)
        print(f"XLA {'on ' if jit else 'off'}: " + " | ".join(
            f"{v} {row['seconds'][v]:.2f} s (x{row['ratio_to_part'][v]:.2f} of part"
            + (f", mem x{row['memory_ratio_to_part'][v]:.2f})" if memory else ")")
            for v in variants), flush=True)
    return rows


def model_infer_section(size, batch, repeats):
    row = in_subprocess(f"model_infer:{size}:{batch}:{max(repeats, 5)}")
    print(f"inference: plain model {row['seconds']['plain']:.3f} s, merged SVF model "
          f"x{row['ratio_merged']:.3f}", flush=True)
    return row


def target_rows(results):
    """The [perf] targets: (target, measured, met) for each figure that was measured."""
    rows = []
    for row in results.get("model", []):
        xla = "XLA" if row["jit_compile"] else "no XLA"
        ratio, memory = row["ratio_to_part"], row.get("memory_ratio_to_part", {})
        if "svf" in ratio:
            rows.append((f"SVF step <= 1.05x partial fine-tuning of layer2-4 ({xla})",
                         ratio["svf"], ratio["svf"] <= 1.05))
        if "svf" in memory:
            rows.append((f"SVF step peak memory <= 1.05x partial fine-tuning ({xla})",
                         memory["svf"], memory["svf"] <= 1.05))
        if row.get("svf_over_paper"):
            rows.append((f"SVF step <= 0.85x the paper's all-factored form ({xla})",
                         row["svf_over_paper"], row["svf_over_paper"] <= 0.85))
        if row.get("kernel_over_factored"):
            # The default form against the other one: the default must be the faster.
            rows.append((f"default SVF step / all-kernel form step ({xla})",
                         1.0 / row["kernel_over_factored"], row["kernel_over_factored"] >= 1.0))
    if "model_inference" in results:
        value = results["model_inference"]["ratio_merged"]
        rows.append(("merged SVF model inference <= 1.02x the plain model", value,
                     value <= 1.02))
    for row in results.get("layer", []):
        rows.append((f"merged SVF inference <= 1.02x plain ({row['shape']}; one layer, noisy)",
                     row["infer_ratio_merged"], row["infer_ratio_merged"] <= 1.02))
    if "data" in results:
        value = results["data"]["pipeline_over_consumption_1shot"]
        rows.append(("input pipeline >= 2x the SVF step's episodes/s", value, value >= 2.0))
    if "build" in results:
        value = results["build"]["seconds"]
        rows.append(("SVF build of ResNet-50 < 10 s", value, value < 10.0))
    return rows


def main(argv):
    del argv
    if FLAGS.worker:
        print(json.dumps(run_worker(FLAGS.worker)))
        return
    unknown = set(FLAGS.sections) - {"layer", "build", "model", "data"}
    if unknown:
        raise ValueError(f"--sections has unknown value(s) {sorted(unknown)}; use layer, "
                         "build, model, data.")
    for name, given, known in (("model_variants", FLAGS.model_variants, MODEL_VARIANTS),
                               ("xla", FLAGS.xla, ("off", "on"))):
        if set(given) - set(known):
            raise ValueError(f"--{name} has unknown value(s) {sorted(set(given) - set(known))}; "
                             f"use {list(known)}.")
    if FLAGS.out:
        paths.check_output_file(FLAGS.out, "--out")
    shapes = FLAGS.shapes or list(LAYER_SHAPES)
    bad = set(shapes) - set(LAYER_SHAPES)
    if bad:
        raise ValueError(f"--shapes has unknown value(s) {sorted(bad)}; use {list(LAYER_SHAPES)}.")
    results = {"machine": machine_info(), "settings": {
        "batch": FLAGS.batch, "size": FLAGS.size, "repeats": FLAGS.repeats,
        "backbone": FLAGS.backbone, "model_size": FLAGS.model_size,
        "model_batch": FLAGS.model_batch, "data_size": FLAGS.data_size}}
    print(f"machine: {results['machine']}")
    if "layer" in FLAGS.sections:
        print(f"\n[layer] batch {FLAGS.batch}, {FLAGS.size}x{FLAGS.size}, median of "
              f"{FLAGS.repeats}; ratios are SVF / plain trainable conv")
        results["layer"] = layer_section(FLAGS.batch, FLAGS.size, FLAGS.repeats, shapes)
    if "build" in FLAGS.sections:
        results["build"] = in_subprocess(f"build:{FLAGS.repeats}")
        print(f"\n[build] apply_svf on all 53 ResNet50 convs: "
              f"{results['build']['seconds']:.2f} s (target < 10 s)")
    if "model" in FLAGS.sections:
        print(f"\n[model] baseline, {FLAGS.backbone}, 1-shot, {FLAGS.model_size}px, batch "
              f"{FLAGS.model_batch}; ratios to partial fine-tuning of layer2-4")
        results["model"] = model_section(FLAGS.model_size, FLAGS.model_batch, FLAGS.repeats,
                                         FLAGS.model_variants, FLAGS.xla, FLAGS.memory)
        results["model_inference"] = model_infer_section(FLAGS.model_size, FLAGS.model_batch,
                                                         FLAGS.repeats)
    if "data" in FLAGS.sections:
        data = in_subprocess(f"data:{FLAGS.data_size}:{FLAGS.repeats}")
        results["data"] = data
        print(f"\n[data] {FLAGS.data_size}px: pipeline 1-shot "
              f"{data['pipeline_1shot_episodes_per_s']:.1f} ep/s, 5-shot "
              f"{data['pipeline_5shot_episodes_per_s']:.1f} ep/s; the SVF training step consumes "
              f"{data['svf_step_episodes_per_s']:.2f} ep/s (pipeline x"
              f"{data['pipeline_over_consumption_1shot']:.0f}); evaluation "
              f"{data['eval_episodes_per_s']:.2f} ep/s")
    targets = target_rows(results)
    results["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets]
    if targets:
        print("\n[targets]")
        for target, measured, met in targets:
            print(f"  {'met   ' if met else 'MISSED'} {measured:8.3f}  {target}")
    if FLAGS.out:
        write_file_atomically(FLAGS.out, json.dumps(results, indent=2))
        print(f"\nwrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
