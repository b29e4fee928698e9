"""The layer section: one conv at ResNet-50 conv4_x / conv5_x shapes, plain against SVF."""

from benchmarks.timing import interleaved_rounds, isolated, peak_rss_mb, round_medians, round_ratio

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
