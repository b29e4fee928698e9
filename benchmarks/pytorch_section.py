"""The pytorch section: svf-tf against PyTorch, training step, eval forward and memory."""

from benchmarks.svf_tf_side import svf_tf_functions
from benchmarks.timing import interleaved_rounds, isolated, peak_rss_mb, round_medians, round_ratio
from benchmarks.torch_side import torch_functions

#: The pytorch section's variants: the issue's table rows.
TORCH_VARIANTS = {"svf": "SVF on layer2-4", "freeze": "frozen backbone"}


def pytorch_time_worker(variant, size, batch, repeats, threads, strategy):
    """svf-tf and PyTorch training steps and eval forwards, timed interleaved in this process.

    svf-tf's eval forward is the model `main.py --mode=eval` scores: for
    "svf", its SVF layers merged (`--merge_svf`, the default); the factored
    SVF model, as validation during training scores it, is timed as well
    ("svf_tf_eval_factored"). PyTorch's eval forward is the references' model.
    """
    tf_train, tf_eval = svf_tf_functions(variant, size, batch, "resnet50", strategy)
    torch_train, torch_eval = torch_functions(variant, size, batch, threads)
    functions = {"svf_tf_train": tf_train, "torch_train": torch_train,
                 "svf_tf_eval": tf_eval, "torch_eval": torch_eval}
    if variant == "svf":
        functions["svf_tf_eval"] = tf_eval.merged()
        functions["svf_tf_eval_factored"] = tf_eval
    rounds = interleaved_rounds(functions, repeats)
    row = {"seconds": round_medians(rounds),
           "train_ratio": round_ratio(rounds, "svf_tf_train", "torch_train"),
           "eval_ratio": round_ratio(rounds, "svf_tf_eval", "torch_eval")}
    if variant == "svf":
        row["eval_ratio_factored"] = round_ratio(rounds, "svf_tf_eval_factored", "torch_eval")
    return row


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
    print("| | train step, svf-tf / PyTorch | eval forward (as --mode=eval) | eval forward, "
          "SVF factored (validation) | peak memory above the framework runtime |\n"
          "|---|---|---|---|---|", flush=True)
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
                factored = row.get("eval_ratio_factored")
                print(f"| {title}, {size} px, batch {batch} | {row['train_ratio']:.2f}x | "
                      f"{row['eval_ratio']:.2f}x | "
                      f"{'-' if factored is None else f'{factored:.2f}x'} | "
                      f"{row['memory_ratio']:.2f}x |", flush=True)
    if rows:
        runtime = rows[-1]["runtime_mb"]
        print(f"framework runtime: TensorFlow + svf-tf {runtime['svf_tf']:.0f} MiB, PyTorch "
              f"{runtime['torch']:.0f} MiB; PyTorch on {threads} threads, TensorFlow at its "
              "default", flush=True)
    return rows
