"""Speed and memory of svf-tf: against PyTorch, and the cost of SVF, side by side in one run.

    python scripts/benchmark.py --out=benchmark.json
    python scripts/benchmark.py --quick     # smoke test: every section, tiny sizes, one round

Sections (`--sections`, comma separated):
  pytorch  The SVF baseline (ResNet-50, 1-shot) against a PyTorch model of the
           same architecture: the references' baseline as the torch-import
           tests write it (tests/torch_import/torch_reference.py; PyTorch is a
           benchmark-only dependency), its layer2-4 convs in the SVF authors'
           factored form for SVF. For SVF on layer2-4 and a frozen backbone,
           at every --sizes x --batches: training step and eval forward
           (svf-tf / PyTorch, timed interleaved in one process; svf-tf's eval
           forward is the model --mode=eval scores, SVF merged, and the
           factored SVF model that validation scores is timed as well),
           and the peak memory a training step adds above the framework
           runtime (one process per framework and variant). PyTorch runs on
           --torch_threads threads, TensorFlow at its default. The weights
           are random on both sides (dense float32 convs: the time does not
           depend on them). `--pytorch_variants` picks the variants.
  layer    One conv layer at ResNet50 conv4_x / conv5_x shapes (60x60, batch 8):
           training step (forward + gradients for the trainable weights and the
           input + SGD update) for a plain trainable Conv2D, SVF compute="kernel"
           and SVF compute="factored" (S trains); inference for plain vs merged
           SVF. Memory: the peak a variant's training steps add, one process each.
  build    Time to decompose every conv of ResNet50 (apply_svf on all 53).
  model    The whole baseline model (1-shot, --backbone, default ResNet-50) at
           --model_size: training step time and peak memory for a frozen
           backbone, SVF (S of layer2-4: the package default, the paper's
           all-factored form and the all-kernel form), partial fine-tuning of
           layer2-4 and full fine-tuning, each with and without XLA
           (`jit_compile`), with the multiply-accumulates of each step's
           convs and matmuls counted in its traced graph (the ops that run:
           the work that bounds the time ratios); and inference of the plain
           model against the merged SVF model (`merge_svf`).
  data     Episodes per second of the training input pipeline (1-shot and
           5-shot, with augmentation, at --data_size, from the synthetic
           dataset on disk) against the episodes per second the SVF training
           step consumes at that size.
  eval     Evaluation of --eval_episodes test episodes at --eval_size (the
           issue's 1,000 at 473 px) with the ResNet-50 SVF baseline, random
           weights on both sides: svf-tf's `main.py --mode=eval` path
           (`evaluate_episodes` on `make_test_dataset`, the SVF layers merged
           as `--merge_svf` does by default) against the references' test
           loop in PyTorch (PFENet / BAM `test.py` with `ori_resize`, batch
           size 1, the SVF authors' factored convs: DataLoader, test
           transform, forward,
           resize to the original label, `intersectionAndUnionGPU`), the same
           saved episodes of the synthetic dataset on both sides, one after
           the other in one process after a 2-episode warm-up each.
           Episodes/s (wall time with data loading) and their ratio.

Every model is built with the method's published backbone (deep-stem
ResNet-50, torchvision's dilation) and trained under `--strategy` (main.py's
flag). Each figure is the median over `--repeats` rounds after warm-up, and
ratios are taken within a round. Compare ratios, not absolute times: the
machine may be shared and noisy. The last table lists the issue's targets.

Each section is a module of the `benchmarks` package next to this script
(`benchmarks/<section>_section.py`); this file holds the flags and the report.
"""

import json
import os
import pathlib
import platform
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmarks package (its workers inherit sys.path)

from svf_tf.cli import startup  # noqa: E402

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from benchmarks.build_section import build_worker  # noqa: E402
from benchmarks.data_section import data_worker  # noqa: E402
from benchmarks.eval_section import eval_worker  # noqa: E402
from benchmarks.layer_section import LAYER_SHAPES, layer_section  # noqa: E402
from benchmarks.model_section import model_infer_worker, model_section  # noqa: E402
from benchmarks.pytorch_section import TORCH_VARIANTS, pytorch_section  # noqa: E402
from benchmarks.svf_tf_side import MODEL_VARIANTS  # noqa: E402
from benchmarks.targets import target_rows  # noqa: E402
from benchmarks.timing import isolated  # noqa: E402
from svf_tf.atomic_files import write_file_atomically  # noqa: E402
from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402

SECTIONS = ("pytorch", "layer", "build", "model", "data", "eval")

flags.DEFINE_list("sections", list(SECTIONS), f"Sections to run: {', '.join(SECTIONS)}.")
flags.DEFINE_bool("quick", False, "Smoke test: every flag not given takes its QUICK value "
                  "(tiny sizes, one round); the numbers mean nothing.")
flags.DEFINE_list("sizes", ["129", "473"], "pytorch section: input sides ((size-1) % 8 == 0).")
flags.DEFINE_list("batches", ["4", "8"], "pytorch section: episodes per step.")
flags.DEFINE_list("pytorch_variants", ["svf", "freeze"],
                  "pytorch section: variants to run (svf: SVF on layer2-4, freeze: frozen "
                  "backbone).")
flags.DEFINE_integer("torch_threads", 2, "pytorch and eval sections: PyTorch's intra-op "
                     "threads.", lower_bound=1)
flags.DEFINE_integer("model_size", 129, "Input side of the model section ((size-1) % 8 == 0).",
                     lower_bound=17)
flags.DEFINE_integer("model_batch", 4, "Episodes per step in the model section.", lower_bound=1)
flags.DEFINE_list("model_variants", ["freeze", "svf", "svf_paper", "svf_kernel", "part", "full"],
                  "Model-section variants (part is the reference of the ratios and always runs).")
flags.DEFINE_list("xla", ["off", "on"], "Model section: run without and/or with jit_compile.")
flags.DEFINE_bool("memory", True, "Model and layer sections: also measure each variant's "
                  "peak memory (one process per variant; the pytorch section always does).")
define_flags(names=("backbone", "strategy"))  # main.py's flags
flags.DEFINE_integer("data_size", 473, "Input side of the data section (the paper's 473).",
                     lower_bound=17)
flags.DEFINE_integer("eval_episodes", 1000, "Test episodes of the eval section (the issue's "
                     "1,000).", lower_bound=1)
flags.DEFINE_integer("eval_size", 473, "Test size of the eval section (the paper's 473).",
                     lower_bound=17)
flags.DEFINE_integer("batch", 8, "Batch size of the layer section.", lower_bound=1)
flags.DEFINE_integer("size", 60, "Feature map side of the layer section.", lower_bound=1)
flags.DEFINE_integer("repeats", 9, "Timed rounds per figure (the median is reported).",
                     lower_bound=1)
flags.DEFINE_list("shapes", None, "Subset of layer shapes to run (names below); all if unset.")
flags.DEFINE_string("out", None, "Write the results as JSON to this file.")
FLAGS = flags.FLAGS

#: --quick: the value of each flag the command line does not give.
QUICK = {"sizes": ["33"], "batches": ["1"], "model_size": 33, "model_batch": 1,
         "xla": ["off"], "data_size": 33, "eval_size": 33, "eval_episodes": 4, "size": 6,
         "batch": 1, "repeats": 1, "shapes": ["conv4_1x1_out"]}


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


def check_choices(name, given, known):
    """Raises the one-line ValueError for values of list flag `name` not in `known`."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"--{name} has unknown value(s) {unknown}; use {list(known)}.")


def int_list(name):
    """List flag `name` as ints, or the one-line ValueError naming the bad value."""
    try:
        return [int(value) for value in FLAGS[name].value]
    except ValueError:
        raise ValueError(f"--{name}={','.join(FLAGS[name].value)} is not a list of integers, "
                         f"e.g. --{name}={','.join(QUICK[name])}.") from None


def main(argv):
    del argv
    if FLAGS.quick:
        for name, value in QUICK.items():
            if not FLAGS[name].present:
                FLAGS[name].value = value
    check_choices("sections", FLAGS.sections, SECTIONS)
    check_choices("pytorch_variants", FLAGS.pytorch_variants, TORCH_VARIANTS)
    check_choices("model_variants", FLAGS.model_variants, MODEL_VARIANTS)
    check_choices("xla", FLAGS.xla, ("off", "on"))
    shapes = FLAGS.shapes or list(LAYER_SHAPES)
    check_choices("shapes", shapes, LAYER_SHAPES)
    sizes, batches = int_list("sizes"), int_list("batches")
    if FLAGS.out:
        paths.check_output_file(FLAGS.out, "--out")
    backbone, strategy = FLAGS.backbone, FLAGS.strategy
    results = {"machine": machine_info(), "settings": {
        "batch": FLAGS.batch, "size": FLAGS.size, "repeats": FLAGS.repeats,
        "backbone": backbone, "strategy": strategy, "model_size": FLAGS.model_size,
        "model_batch": FLAGS.model_batch, "data_size": FLAGS.data_size, "sizes": sizes,
        "batches": batches, "pytorch_variants": FLAGS.pytorch_variants,
        "torch_threads": FLAGS.torch_threads, "eval_episodes": FLAGS.eval_episodes,
        "eval_size": FLAGS.eval_size}}
    print(f"machine: {results['machine']}")
    if "pytorch" in FLAGS.sections:
        print(f"\n[pytorch] SVF baseline, ResNet-50, 1-shot, median of {FLAGS.repeats} "
              "interleaved rounds; ratios svf-tf / PyTorch")
        results["pytorch"] = pytorch_section(sizes, batches, FLAGS.pytorch_variants,
                                             FLAGS.repeats, FLAGS.torch_threads, strategy)
    if "layer" in FLAGS.sections:
        print(f"\n[layer] batch {FLAGS.batch}, {FLAGS.size}x{FLAGS.size}, median of "
              f"{FLAGS.repeats}; ratios are SVF / plain trainable conv")
        results["layer"] = layer_section(FLAGS.batch, FLAGS.size, FLAGS.repeats, shapes,
                                            FLAGS.memory)
    if "build" in FLAGS.sections:
        results["build"] = isolated(build_worker, FLAGS.repeats)
        print(f"\n[build] apply_svf on all 53 ResNet50 convs: "
              f"{results['build']['seconds']:.2f} s (target < 10 s)")
    if "model" in FLAGS.sections:
        print(f"\n[model] baseline, {backbone}, 1-shot, {FLAGS.model_size}px, batch "
              f"{FLAGS.model_batch}; ratios to partial fine-tuning of layer2-4")
        results["model"] = model_section(FLAGS.model_size, FLAGS.model_batch, FLAGS.repeats,
                                         FLAGS.model_variants, FLAGS.xla, FLAGS.memory,
                                         backbone, strategy)
        row = isolated(model_infer_worker, FLAGS.model_size, FLAGS.model_batch,
                       max(FLAGS.repeats, 5), backbone, strategy)
        results["model_inference"] = row
        print(f"inference: plain model {row['seconds']['plain']:.3f} s, merged SVF model "
              f"x{row['ratio_merged']:.3f} (MACs x{row['macs_ratio_merged']:.3f})", flush=True)
    if "data" in FLAGS.sections:
        data = isolated(data_worker, FLAGS.data_size, FLAGS.repeats, backbone, strategy)
        results["data"] = data
        print(f"\n[data] {FLAGS.data_size}px: pipeline 1-shot "
              f"{data['pipeline_1shot_episodes_per_s']:.1f} ep/s, 5-shot "
              f"{data['pipeline_5shot_episodes_per_s']:.1f} ep/s; the SVF training step consumes "
              f"{data['svf_step_episodes_per_s']:.2f} ep/s (pipeline x"
              f"{data['pipeline_over_consumption_1shot']:.0f})")
    if "eval" in FLAGS.sections:
        row = isolated(eval_worker, FLAGS.eval_episodes, FLAGS.eval_size, FLAGS.torch_threads)
        results["eval"] = row
        tf_side, torch_side = row["svf_tf"], row["torch"]
        print(f"\n[eval] {row['episodes']} test episodes at {row['size']} px, SVF baseline "
              f"(ResNet-50, random weights), 1-shot: svf-tf {tf_side['episodes_per_s']:.2f} "
              f"ep/s ({tf_side['seconds']:.1f} s, mIoU {100 * tf_side['miou']:.1f}, SVF "
              f"merged), the "
              f"references' PyTorch test loop {torch_side['episodes_per_s']:.2f} ep/s "
              f"({torch_side['seconds']:.1f} s, mIoU {100 * torch_side['miou']:.1f}, "
              f"{FLAGS.torch_threads} threads); svf-tf / PyTorch x{row['ratio']:.2f}")
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
