"""The [perf] targets of the figures a run measured."""

from benchmarks.pytorch_section import TORCH_VARIANTS


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
