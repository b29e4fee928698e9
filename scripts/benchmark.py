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
           (svf-tf / PyTorch, the four timed interleaved in one process),
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
"""

import concurrent.futures
import json
import math
import multiprocessing
import os
import pathlib
import platform
import resource
import statistics
import sys
import time

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.atomic_files import write_file_atomically  # noqa: E402
from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402
from svf_tf.data.transforms.presets import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
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
#: The pytorch section's variants: the issue's table rows.
TORCH_VARIANTS = {"svf": "SVF on layer2-4", "freeze": "frozen backbone"}


def isolated(function, *args):
    """`function(*args)` in a fresh Python process, so that its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def peak_rss_mb():
    """This process's peak resident memory in MiB.

    Linux's VmHWM: `ru_maxrss` would carry over the peak of the process that
    started this one (it survives `exec`).
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status
                        if line.startswith("VmHWM:")) / 1024.0
    except OSError:
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


def interleaved_rounds(functions, repeats, warmup=2, pause=0.2):
    """Times every function once per round, round after round, after `warmup` calls each.

    Ratios taken within a round see the same machine load on both sides. A
    `pause` (seconds) before each call lets the threads of the previous one
    (TensorFlow's and PyTorch's pools spin before they sleep) go idle.

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
            time.sleep(pause)
            start = time.perf_counter()
            function()
            timing[name] = time.perf_counter() - start
        rounds.append(timing)
    return rounds


def round_medians(rounds):
    """{name: median seconds} over `rounds`."""
    return {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}


def round_ratio(rounds, a, b):
    """The median over `rounds` of the per-round ratio a / b."""
    return statistics.median(r[a] / r[b] for r in rounds)


# The layer section.
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
    """Times every variant of one shape in this process, interleaved round by round."""
    steps = {(mode, v): _layer_step(shape_name, v, mode, batch, size)
             for mode, variants in (("train", TRAIN_VARIANTS), ("infer", INFER_VARIANTS))
             for v in variants}
    rounds = interleaved_rounds(
        {key: (lambda step=step: step().numpy()) for key, step in steps.items()}, repeats)
    medians = round_medians(rounds)
    return {
        "shape": shape_name,
        "train_seconds": {v: medians[("train", v)] for v in TRAIN_VARIANTS},
        "infer_seconds": {v: medians[("infer", v)] for v in INFER_VARIANTS},
        "train_ratio_kernel": round_ratio(rounds, ("train", "svf_kernel"), ("train", "plain")),
        "train_ratio_factored": round_ratio(rounds, ("train", "svf_factored"),
                                            ("train", "plain")),
        "train_ratio_kernel_vs_factored": round_ratio(rounds, ("train", "svf_kernel"),
                                                      ("train", "svf_factored")),
        "infer_ratio_merged": round_ratio(rounds, ("infer", "svf_merged"), ("infer", "plain")),
    }


def layer_memory_worker(shape_name, variant, batch, size):
    """Peak resident memory added by training steps of one variant, in MB."""
    step = _layer_step(shape_name, variant, "train", batch, size)
    before = peak_rss_mb()
    for _ in range(3):
        step().numpy()
    return peak_rss_mb() - before


def layer_section(batch, size, repeats, shapes, memory):
    rows = []
    for shape in shapes:
        row = isolated(layer_time_worker, shape, batch, size, repeats)
        t, mem = row["train_seconds"], {}
        if memory:
            peak = {v: isolated(layer_memory_worker, shape, v, batch, size)
                    for v in TRAIN_VARIANTS}
            row["train_step_peak_mb"] = peak
            for variant in ("kernel", "factored"):
                row[f"memory_ratio_{variant}"] = peak[f"svf_{variant}"] / max(peak["plain"], 1e-9)
                mem[variant] = f" mem x{row[f'memory_ratio_{variant}']:.2f}"
            mem["plain"] = f" {peak['plain']:6.0f} MB"
        rows.append(row)
        print(f"{shape:<14} plain {t['plain'] * 1e3:7.1f} ms{mem.get('plain', '')} | "
              f"kernel x{row['train_ratio_kernel']:.2f}{mem.get('kernel', '')} | "
              f"factored x{row['train_ratio_factored']:.2f}{mem.get('factored', '')} | "
              f"kernel/factored x{row['train_ratio_kernel_vs_factored']:.2f} | merged "
              f"inference x{row['infer_ratio_merged']:.2f}", flush=True)
    return rows


def build_worker(repeats):
    import keras

    import svf_tf

    model = keras.applications.ResNet50(weights=None, include_top=False,
                                        input_shape=(473, 473, 3))
    seconds = median_seconds(lambda: svf_tf.apply_svf(model), max(1, repeats // 2), warmup=0)
    return {"section": "build", "seconds": seconds, "convs": 53, "peak_rss_mb": peak_rss_mb()}


# The whole model (sections pytorch, model, data).
# "svf" is the package default (S of layer2-4 in the factored form, the
# decomposed but frozen layer0-1 as one conv each); "svf_paper" runs every
# decomposed layer in the factored form, as Algorithm 1 / the authors' code;
# "svf_kernel" composes the kernel in every layer (Keras' LoRA pattern).
MODEL_VARIANTS = {
    "freeze": {"finetune": "freeze"},
    "svf": {"finetune": "svf", "svf_compute": "factored", "svf_rank_multiple": 1},
    "svf_paper": {"finetune": "svf", "svf_compute": "factored", "svf_rank_multiple": 1},
    "svf_kernel": {"finetune": "svf", "svf_compute": "kernel", "svf_rank_multiple": 1},
    "part": {"finetune": "part"},
    "full": {"finetune": "full", "finetune_stages": (0, 1, 2, 3, 4), "train_bn": False},
}


def _random_batch(size, batch, shot=1):
    import numpy as np

    rng = np.random.default_rng(0)
    return {"query_image": rng.normal(size=(batch, size, size, 3)).astype("float32"),
            "support_images": rng.normal(size=(batch, shot, size, size, 3)).astype("float32"),
            "support_masks": rng.integers(0, 2, (batch, shot, size, size)).astype("int32"),
            "query_mask": rng.integers(0, 2, (batch, size, size)).astype("int32"),
            "class_slot": np.zeros((batch,), "int32")}


def svf_tf_functions(variant, size, batch, backbone, strategy="auto", jit=False, merged=False):
    """(train step, eval forward) of svf-tf's baseline, the real `FewShotTask` ones.

    Both run on a fixed random batch and block until their result is on the
    host. `merged`: the eval forward of the merged SVF model (`merge_svf`).
    """
    import tensorflow as tf

    import svf_tf
    from svf_tf.config.experiment import ExperimentConfig
    from svf_tf.layers import SVFConv2D
    from svf_tf.runs.strategy import make_strategy
    from svf_tf.surgery.layer_paths import iter_layers
    from svf_tf.tasks.few_shot import FewShotTask

    config = ExperimentConfig.from_settings(
        synthetic=True, backbone=backbone, train_size=size, test_size=size, batch_size=batch,
        jit_compile=jit, strategy=strategy, **MODEL_VARIANTS[variant])
    task = FewShotTask(config, log=lambda *_: None)
    distribution = make_strategy(strategy)
    with distribution.scope():
        model = task.build_model()
        if variant == "svf_paper":
            for _, layer in iter_layers(model):
                if isinstance(layer, SVFConv2D):
                    layer.compute = "factored"
        optimizer = task.build_optimizer(model, total_steps=100)
    step = task.make_train_step(model, optimizer, distribution)
    predict = task.make_predict_fn(svf_tf.merge_svf(model) if merged else model)
    data = {k: tf.constant(v) for k, v in _random_batch(size, batch).items()}
    inputs = [data[k] for k in ("query_image", "support_images", "support_masks")]

    def train():
        return step(data)["loss"].numpy()

    def evaluate():
        return predict(*inputs).numpy()

    train.graph = lambda: step.get_concrete_function(data).graph  # the traced functions
    evaluate.graph = lambda: predict.get_concrete_function(*inputs).graph
    return train, evaluate


# The work of a training step, counted in its traced graph. TensorFlow's
# profiler counts only ops with registered statistics (not the conv gradients)
# and every op of the graph, also those the runtime prunes: the gradient of a
# conv is built for its kernel and its input together, and the one nothing
# reads (a frozen kernel's) never runs.
#: Conv and matmul ops: their multiply-accumulates, from static shapes.
MAC_KINDS = {"Conv2D": "forward", "Conv2DBackpropInput": "input_grad",
             "Conv2DBackpropFilter": "kernel_grad", "MatMul": "matmul",
             "BatchMatMulV2": "matmul", "BatchMatMulV3": "matmul", "Einsum": "matmul"}


def op_macs(op):
    """Multiply-accumulates of one `MAC_KINDS` op (NHWC convs; 0 for other ops)."""
    def dims(tensor):
        return [int(d) for d in tensor.shape]

    kind = op.type
    if kind == "Conv2D":  # output pixels x channels x (kh kw cin)
        kernel = dims(op.inputs[1])
        return math.prod(dims(op.outputs[0])) * math.prod(kernel[:3])
    if kind in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):  # as the forward conv
        kernel = dims(op.inputs[1] if kind == "Conv2DBackpropInput" else op.outputs[0])
        return math.prod(dims(op.inputs[2])) * math.prod(kernel[:3])
    if kind == "Einsum":  # the product of every index's extent
        inputs = op.get_attr("equation").decode().split("->")[0].split(",")
        extent = {}
        for letters, tensor in zip(inputs, op.inputs, strict=True):
            extent.update(zip(letters, dims(tensor), strict=True))
        return math.prod(extent.values())
    if kind in MAC_KINDS:  # MatMul / BatchMatMul: output x contracted extent
        a = dims(op.inputs[0])
        transposed = op.get_attr("transpose_a" if kind == "MatMul" else "adj_x")
        return math.prod(dims(op.outputs[0])) * (a[-2] if transposed else a[-1])
    return 0


def live_ops(graph):
    """The ops the runtime keeps: the fan-in of the graph's outputs and stateful ops."""
    outputs = {tensor.op for tensor in getattr(graph, "outputs", ())}
    stack = [op for op in graph.get_operations() if op in outputs or op._is_stateful]
    live = set()
    while stack:
        op = stack.pop()
        if op not in live:
            live.add(op)
            stack.extend([tensor.op for tensor in op.inputs] + list(op.control_inputs))
    return live


def graph_macs(graph, totals=None, seen=None):
    """{kind: multiply-accumulates} of the live ops of `graph` and its nested functions."""
    totals = dict.fromkeys(sorted(set(MAC_KINDS.values())), 0) if totals is None else totals
    seen = set() if seen is None else seen
    for op in live_ops(graph):
        if op.type in MAC_KINDS:
            totals[MAC_KINDS[op.type]] += op_macs(op)
    for name, function in getattr(graph, "_functions", {}).items():
        if name not in seen and getattr(function, "graph", None) is not None:
            seen.add(name)
            graph_macs(function.graph, totals, seen)
    return totals


def torch_model(variant, threads):
    """(model, backbone stages) of the PyTorch SVF baseline, on `threads` intra-op threads.

    The model is tests/torch_import/torch_reference.py's `Baseline` on its
    deep-stem ResNet-50 with torchvision's dilation (the SVF authors'
    `model/aspp.py` on `model/module/resnet.py`), random weights (seed 0).
    `down_query` and the backbone are frozen; for SVF the convs of layer2-4
    are factored (`FactoredConv`), only S trains.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    sys.path.insert(0, str(ROOT))
    from tests.torch_import import torch_reference as reference

    class FactoredConv(nn.Module):
        """conv(x, V) * S, then the 1x1 conv by U; W = U diag(S) V^T, U and V frozen."""

        def __init__(self, conv):
            super().__init__()
            u, s, vt = torch.linalg.svd(conv.weight.detach().flatten(1), full_matrices=False)
            # contiguous: LAPACK's column-major factors would send the convs off oneDNN.
            conv.weight = nn.Parameter(vt.reshape(-1, *conv.weight.shape[1:]).contiguous(),
                                       requires_grad=False)
            self.conv, self.s = conv, nn.Parameter(s)
            self.register_buffer("u", u[:, :, None, None].contiguous())

        def forward(self, x):
            return F.conv2d(self.conv(x) * self.s[:, None, None], self.u)

    torch.set_num_threads(threads)
    resnet = reference.set_resnet_dilation(reference.DeepStemResNet50(), "torchvision")
    stages = reference.randomize(resnet, 0).stages()
    net = reference.Baseline(stages, vgg=False, shot=1)
    for module in (*stages, net.down_query):
        module.requires_grad_(False)
    if variant == "svf":
        for module in [m for stage in stages[2:] for m in stage.modules()]:
            for name, child in module.named_children():
                if isinstance(child, nn.Conv2d):
                    setattr(module, name, FactoredConv(child))
    return net, stages


def torch_functions(variant, size, batch, threads):
    """(train step, eval forward) of `torch_model`'s baseline, as the references train it.

    Backbone BatchNorm in eval mode (`fix_bn`); SGD with momentum and weight
    decay, cross-entropy ignoring 255.
    """
    import torch
    import torch.nn.functional as F

    net, stages = torch_model(variant, threads)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.0025,
                                momentum=0.9, weight_decay=1e-4)
    data = {k: torch.from_numpy(v) for k, v in _random_batch(size, batch).items()}
    query = data["query_image"].permute(0, 3, 1, 2).contiguous()
    supports = data["support_images"].permute(0, 1, 4, 2, 3).contiguous()
    masks, target = data["support_masks"], data["query_mask"].long()

    def set_mode(training):
        net.train(training)
        for stage in stages:
            stage.eval()

    def train():
        set_mode(True)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(query, supports, masks), target, ignore_index=255)
        loss.backward()
        optimizer.step()
        return loss.item()

    def evaluate():
        set_mode(False)
        with torch.inference_mode():
            return net(query, supports, masks).numpy()

    return train, evaluate


def pytorch_time_worker(variant, size, batch, repeats, threads, strategy):
    """svf-tf and PyTorch training steps and eval forwards, timed interleaved in this process."""
    tf_train, tf_eval = svf_tf_functions(variant, size, batch, "resnet50", strategy)
    torch_train, torch_eval = torch_functions(variant, size, batch, threads)
    rounds = interleaved_rounds({"svf_tf_train": tf_train, "torch_train": torch_train,
                                 "svf_tf_eval": tf_eval, "torch_eval": torch_eval}, repeats)
    return {"seconds": round_medians(rounds),
            "train_ratio": round_ratio(rounds, "svf_tf_train", "torch_train"),
            "eval_ratio": round_ratio(rounds, "svf_tf_eval", "torch_eval")}


def pytorch_memory_worker(framework, variant, size, batch, threads, strategy):
    """(framework runtime, peak a training step adds above it) in MB, in this process."""
    if framework == "torch":
        import torch  # noqa: F401

        runtime = peak_rss_mb()
        train, _ = torch_functions(variant, size, batch, threads)
    else:
        import tensorflow as tf  # noqa: F401

        from svf_tf.tasks.few_shot import FewShotTask  # noqa: F401

        runtime = peak_rss_mb()
        train, _ = svf_tf_functions(variant, size, batch, "resnet50", strategy)
    for _ in range(3):
        train()
    return runtime, peak_rss_mb() - runtime


def pytorch_section(sizes, batches, variants, repeats, threads, strategy):
    rows = []
    print("| | train step, svf-tf / PyTorch | eval forward | peak memory above the framework "
          "runtime |\n|---|---|---|---|", flush=True)
    for size in sizes:
        for batch in batches:
            for variant, title in TORCH_VARIANTS.items():
                if variant not in variants:
                    continue
                row = isolated(pytorch_time_worker, variant, size, batch, repeats, threads,
                               strategy)
                memory = {framework: isolated(pytorch_memory_worker, framework, variant, size,
                                              batch, threads, strategy)
                          for framework in ("svf_tf", "torch")}
                row.update(variant=variant, size=size, batch=batch,
                           runtime_mb={k: m[0] for k, m in memory.items()},
                           step_peak_mb={k: m[1] for k, m in memory.items()})
                row["memory_ratio"] = row["step_peak_mb"]["svf_tf"] / max(
                    row["step_peak_mb"]["torch"], 1e-9)
                rows.append(row)
                print(f"| {title}, {size} px, batch {batch} | {row['train_ratio']:.2f}x | "
                      f"{row['eval_ratio']:.2f}x | {row['memory_ratio']:.2f}x |", flush=True)
    if rows:
        runtime = rows[-1]["runtime_mb"]
        print(f"framework runtime: TensorFlow + svf-tf {runtime['svf_tf']:.0f} MiB, PyTorch "
              f"{runtime['torch']:.0f} MiB; PyTorch on {threads} threads, TensorFlow at its "
              "default", flush=True)
    return rows


def model_time_worker(size, batch, jit, repeats, variants, backbone, strategy):
    """Every variant's training step in this process, timed interleaved round by round."""
    steps = {v: svf_tf_functions(v, size, batch, backbone, strategy, jit)[0] for v in variants}
    rounds = interleaved_rounds(steps, repeats)
    macs = {v: graph_macs(step.graph()) for v, step in steps.items()}

    def ratio(a, b):
        return round_ratio(rounds, a, b) if {a, b} <= set(steps) else None

    return {"jit_compile": jit, "seconds": round_medians(rounds),
            "ratio_to_part": {v: ratio(v, "part") for v in steps},
            "kernel_over_factored": ratio("svf_kernel", "svf"),
            "svf_over_paper": ratio("svf", "svf_paper"), "gmacs": {
                v: {kind: m / 1e9 for kind, m in counts.items()} for v, counts in macs.items()},
            "macs_ratio_to_part": {v: sum(macs[v].values()) / max(sum(macs["part"].values()), 1)
                                   for v in macs}}


def model_infer_worker(size, batch, repeats, backbone, strategy):
    """Inference of the plain (frozen-backbone) model against the merged SVF model."""
    functions = {"plain": svf_tf_functions("freeze", size, batch, backbone, strategy)[1],
                 "svf_merged": svf_tf_functions("svf", size, batch, backbone, strategy,
                                                merged=True)[1]}
    rounds = interleaved_rounds(functions, repeats)
    macs = {name: sum(graph_macs(function.graph()).values())
            for name, function in functions.items()}
    return {"seconds": round_medians(rounds),
            "ratio_merged": round_ratio(rounds, "svf_merged", "plain"),
            "macs_ratio_merged": macs["svf_merged"] / max(macs["plain"], 1)}


def model_memory_worker(variant, size, batch, jit, backbone, strategy):
    step = svf_tf_functions(variant, size, batch, backbone, strategy, jit)[0]
    before = peak_rss_mb()
    for _ in range(3):
        step()
    return peak_rss_mb() - before


def model_section(size, batch, repeats, variants, xla, memory, backbone, strategy):
    rows = []
    variants = ["part"] + [v for v in MODEL_VARIANTS if v in variants and v != "part"]
    for jit in [mode == "on" for mode in xla]:
        row = isolated(model_time_worker, size, batch, jit, repeats, variants, backbone,
                       strategy)
        if memory:
            row["step_peak_mb"] = {v: isolated(model_memory_worker, v, size, batch, jit,
                                               backbone, strategy) for v in variants}
            part_mb = max(row["step_peak_mb"]["part"], 1e-9)
            row["memory_ratio_to_part"] = {v: m / part_mb for v, m in row["step_peak_mb"].items()}
        rows.append(row)
        print(f"XLA {'on ' if jit else 'off'}: " + " | ".join(
            f"{v} {row['seconds'][v]:.2f} s (x{row['ratio_to_part'][v]:.2f} of part, MACs "
            f"x{row['macs_ratio_to_part'][v]:.2f}"
            + (f", mem x{row['memory_ratio_to_part'][v]:.2f})" if memory else ")")
            for v in variants), flush=True)
    return rows


def data_worker(size, repeats, backbone, strategy):
    """Input pipeline throughput against the SVF step's consumption."""
    from svf_tf.data import build_fold_lists, ensure_synthetic_dataset
    from svf_tf.data.pipeline import make_train_dataset, measure_episodes_per_second
    from svf_tf.data.transforms.presets import augment_config

    root = ensure_synthetic_dataset()
    train = build_fold_lists("pascal", root, 0, "train", progress=False)
    config = augment_config("pascal", crop_size=size, test_size=size)
    result = {"size": size}
    for shot in (1, 5):
        dataset = make_train_dataset(train, shot, config, seed=321, epoch=0, batch_size=8)
        result[f"pipeline_{shot}shot_episodes_per_s"] = measure_episodes_per_second(
            dataset, num_batches=max(4, repeats))
    batch = 2
    step, _ = svf_tf_functions("svf", size, batch, backbone, strategy)
    seconds = median_seconds(step, max(2, repeats // 2), warmup=2)
    result["svf_step_seconds"] = seconds
    result["svf_step_episodes_per_s"] = batch / seconds
    result["pipeline_over_consumption_1shot"] = (result["pipeline_1shot_episodes_per_s"]
                                                 / result["svf_step_episodes_per_s"])
    return result


# The eval section: the references' test loop (PFENet and BAM `test.py` with
# `ori_resize: True`, batch size 1; their `util/transform.py` and `util/util.py`).

def torch_test_transform(image, label, size):
    """The references' test transform: `test_Resize(size)`, `ToTensor`, `Normalize`.

    The long side goes to `size`, the short side to int(short * size / long),
    then both are floored to a multiple of 8; the image (INTER_LINEAR) is
    pasted top-left on a size x size canvas of 0 before normalisation, the
    label (INTER_NEAREST) on 255.

    Args:
        image: HxWx3 float32 RGB, 0..255.
        label: HxW binary label (0, 1, 255).

    Returns:
        (3 x size x size float32 tensor, size x size int64 tensor).
    """
    import cv2
    import numpy as np
    import torch

    height, width = label.shape[:2]
    if height >= width:
        new_h, new_w = size, int(width * (size * 1.0 / height))
    else:
        new_h, new_w = int(height * (size * 1.0 / width)), size
    new_h, new_w = new_h // 8 * 8, new_w // 8 * 8
    canvas = np.zeros((size, size, 3))
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    mask = np.full((size, size), 255.0)
    mask[:new_h, :new_w] = cv2.resize(label.astype(np.float32), (new_w, new_h),
                                      interpolation=cv2.INTER_NEAREST)
    tensor = torch.from_numpy(canvas.transpose((2, 0, 1))).float()
    for channel, mean, std in zip(tensor, IMAGENET_MEAN, IMAGENET_STD, strict=True):
        channel.sub_(mean).div_(std)
    return tensor, torch.from_numpy(mask).long()


def intersection_and_union(output, target, classes=2, ignore_index=255):
    """The references' `intersectionAndUnionGPU`: per-class (intersection, union, target) areas.

    Pixels whose target is `ignore_index` are set to it in the prediction and
    fall outside histc's range. On the CPU `torch.histc` takes floats only, so
    the labels are cast (exact for these small integers).
    """
    output, target = output.reshape(-1).clone(), target.reshape(-1)
    output[target == ignore_index] = ignore_index
    intersection = output[output == target].float()
    area_intersection = intersection.histc(bins=classes, min=0, max=classes - 1)
    area_output = output.float().histc(bins=classes, min=0, max=classes - 1)
    area_target = target.float().histc(bins=classes, min=0, max=classes - 1)
    return area_intersection, area_output + area_target - area_intersection, area_target


class TorchTestEpisodes:
    """The references' test `SemData` (map-style Dataset) over saved episodes.

    Item: (query image, query label, support images [K,3,S,S], support labels
    [K,S,S], class slot, the raw binary query label at its original size),
    read with cv2 (BGR -> RGB float32; labels IMREAD_GRAYSCALE), binarised
    for the episode's class (255 kept), then `torch_test_transform`. A plain
    class (the DataLoader needs only `__len__` and `__getitem__`), so that
    this script imports without PyTorch.
    """

    def __init__(self, episodes, size):
        self.episodes, self.size = list(episodes), size

    def __len__(self):
        return len(self.episodes)

    def _read(self, item, class_id):
        import cv2
        import numpy as np

        image = cv2.cvtColor(cv2.imread(item[0], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        label = cv2.imread(item[1], cv2.IMREAD_GRAYSCALE)
        binary = np.zeros_like(label)
        binary[label == class_id] = 1
        binary[label == 255] = 255
        return np.float32(image), binary

    def __getitem__(self, index):
        import torch

        episode = self.episodes[index]
        image, raw_label = self._read(episode.query, episode.class_id)
        query, label = torch_test_transform(image, raw_label, self.size)
        supports = [torch_test_transform(*self._read(item, episode.class_id), self.size)
                    for item in episode.supports]
        return (query, label, torch.stack([s[0] for s in supports]),
                torch.stack([s[1] for s in supports]), episode.class_slot, raw_label)


def torch_test_loop(net, loader, num_classes):
    """The references' `validate` loop over `loader`: its report, timed like `evaluate_episodes`.

    Per episode, under `torch.no_grad()` and `eval()`: forward, the logits
    resized bilinearly (align_corners) to L x L, L the longer side of the raw
    label, argmax, the target the raw label pasted top-left on L x L of 255,
    `intersection_and_union`, summed per class slot (mIoU) and over the two
    labels (FB-IoU). The references also compute the loss for their log;
    left out here. Timed from the first batch request to the last metric
    update.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    class_intersection, class_union = np.zeros(num_classes), np.zeros(num_classes)
    intersection_sum, union_sum = np.zeros(2), np.zeros(2)
    net.eval()
    episodes = 0
    start = time.perf_counter()
    with torch.no_grad():
        for query, _, supports, masks, class_slot, raw_label in loader:
            output = net(query, supports, masks)
            height, width = raw_label.shape[1:]
            side = max(height, width)
            target = torch.full((1, side, side), 255, dtype=torch.long)
            target[0, :height, :width] = raw_label[0]
            output = F.interpolate(output, size=(side, side), mode="bilinear",
                                   align_corners=True)
            intersection, union, _ = intersection_and_union(output.max(1)[1], target)
            intersection, union = intersection.numpy(), union.numpy()
            intersection_sum += intersection
            union_sum += union
            class_intersection[int(class_slot[0])] += intersection[1]
            class_union[int(class_slot[0])] += union[1]
            episodes += 1
    seconds = time.perf_counter() - start
    return {"episodes": episodes, "seconds": seconds, "episodes_per_s": episodes / seconds,
            "miou": float(np.mean(class_intersection / (class_union + 1e-10))),
            "fb_iou": float(np.mean(intersection_sum / (union_sum + 1e-10)))}


def eval_worker(num_episodes, size, threads):
    """svf-tf's evaluation and the references' test loop on the same episodes, in this process."""
    import tempfile

    import torch

    from svf_tf.cli.evaluate import evaluation_model
    from svf_tf.config.experiment import ExperimentConfig
    from svf_tf.data import build_fold_lists, ensure_synthetic_dataset
    from svf_tf.data.episodes.episode_files import load_or_create_test_episodes
    from svf_tf.data.pipeline import make_test_dataset
    from svf_tf.data.transforms.presets import augment_config
    from svf_tf.metrics.evaluation import evaluate_episodes
    from svf_tf.tasks.few_shot import FewShotTask

    val = build_fold_lists("pascal", ensure_synthetic_dataset(), 0, "val", progress=False)
    with tempfile.TemporaryDirectory() as directory:
        episodes = load_or_create_test_episodes(os.path.join(directory, "episodes.jsonl"), val,
                                                shot=1, seed=321, num_episodes=num_episodes)
    config = augment_config("pascal", crop_size=size, test_size=size)
    task = FewShotTask(ExperimentConfig.from_settings(
        synthetic=True, backbone="resnet50", test_size=size, **MODEL_VARIANTS["svf"]),
        log=lambda *_: None)
    predict = task.make_predict_fn(evaluation_model(task.build_model()))  # SVF merged
    net, _ = torch_model("svf", threads)

    def svf_tf_loop(subset):  # what main.py --mode=eval runs
        report = evaluate_episodes(predict, make_test_dataset(subset, config), num_classes=5,
                                   verbose=0)
        return {"episodes": report["episodes"], "seconds": report["seconds"],
                "episodes_per_s": report["episodes_per_second"], "miou": report["miou"],
                "fb_iou": report["fb_iou"]}

    # The references' loader workers are forked (Linux' default); in this spawned
    # process the default is spawn, whose workers would first import this script.
    fork = "fork" in multiprocessing.get_all_start_methods()

    def torch_loop(subset):
        loader = torch.utils.data.DataLoader(
            TorchTestEpisodes(subset, size), batch_size=1, shuffle=False,
            num_workers=min(2, os.cpu_count() or 1), pin_memory=False,
            multiprocessing_context="fork" if fork else None)
        return torch_test_loop(net, loader, num_classes=5)

    svf_tf_loop(episodes[:2])  # warm-up: traces, thread pools, first allocations
    torch_loop(episodes[:2])
    result = {"episodes": num_episodes, "size": size, "torch_threads": threads,
              "svf_tf": svf_tf_loop(episodes), "torch": torch_loop(episodes)}
    result["ratio"] = result["svf_tf"]["episodes_per_s"] / result["torch"]["episodes_per_s"]
    return result


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


def target_rows(results):
    """The [perf] targets: (target, measured, met) for each figure that was measured."""
    rows = []
    for row in results.get("pytorch", []):
        where = f"{TORCH_VARIANTS[row['variant']]}, {row['size']} px, batch {row['batch']}"
        rows.append((f"train step <= 1.0x PyTorch ({where})", row["train_ratio"],
                     row["train_ratio"] <= 1.0))
        rows.append((f"eval forward <= 1.0x PyTorch ({where})", row["eval_ratio"],
                     row["eval_ratio"] <= 1.0))
    for row in results.get("model", []):
        xla = "XLA" if row["jit_compile"] else "no XLA"
        ratio, memory = row["ratio_to_part"], row.get("memory_ratio_to_part", {})
        if "svf" in ratio:
            rows.append((f"SVF step <= 0.75x partial fine-tuning of layer2-4 ({xla})",
                         ratio["svf"], ratio["svf"] <= 0.75))
        if "svf" in memory:
            rows.append((f"SVF step peak memory <= 0.67x partial fine-tuning ({xla})",
                         memory["svf"], memory["svf"] <= 0.67))
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
    if "eval" in results:
        row = results["eval"]
        rows.append((f"evaluation of {row['episodes']} episodes at {row['size']} px >= 1.0x the "
                     "reference's test loop (episodes/s)", row["ratio"], row["ratio"] >= 1.0))
    if "build" in results:
        value = results["build"]["seconds"]
        rows.append(("SVF build of ResNet-50 < 10 s", value, value < 10.0))
    return rows


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
