"""The model section: training steps of every fine-tuning mode, their MACs, merged inference."""

from benchmarks.macs import graph_macs
from benchmarks.svf_tf_side import MODEL_VARIANTS, svf_tf_functions
from benchmarks.timing import interleaved_rounds, isolated, peak_rss_mb, round_medians, round_ratio


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
                 "svf_merged": svf_tf_functions("svf", size, batch, backbone,
                                                strategy)[1].merged()}
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
