"""`--mode=demo`: frozen backbone vs SVF on the built-in synthetic dataset.

The README's first command. With no dataset and no internet it trains and
evaluates the SVF paper's baseline twice through the real training path,
once with a frozen backbone and once with SVF (singular values of layer2-4),
at a reduced resolution, and prints a comparison table. ImageNet weights are
used when Keras' file is already in its cache; otherwise the backbone starts
from random weights and the demo says so.
"""

import dataclasses
import os

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.config.modes import DEMO_SETTINGS, demo_defaults  # noqa: F401 (the demo's sizes)
from svf_tf.runs.run_files import write_json


def demo_config(**settings):
    """The demo's `ExperimentConfig` from Python: `settings` over `demo_defaults`."""
    return ExperimentConfig.from_settings(
        **{**demo_defaults(settings), "mode": "demo", **settings})


def demo_configs(config):
    """The two runs compared: frozen backbone and SVF (`config.finetune`), otherwise identical.

    Each writes into its own subdirectory of the demo's work directory.
    """
    specs = {"freeze": type(config.finetune)("freeze"), "svf": config.finetune}
    return {name: dataclasses.replace(
                config, finetune=spec,
                run=dataclasses.replace(config.run, work_dir=os.path.join(config.run.work_dir,
                                                                          name)))
            for name, spec in specs.items()}


def format_table(results):
    lines = [f"{'backbone':<10} {'mIoU':>7} {'FB-IoU':>7} {'trainable values':>17} "
             f"{'backbone values':>16} {'minutes':>8}"]
    for name, summary in results.items():
        report = summary["last_eval"] or {}
        best = summary["best_miou"] or 0.0
        lines.append(f"{name:<10} {100 * best:7.2f} {100 * report.get('fb_iou', 0.0):7.2f} "
                     f"{summary['svf_trainable_values'] + summary['other_trainable_values']:>17,}"
                     f" {summary['svf_trainable_values']:>16,} {summary['seconds'] / 60:8.1f}")
    return "\n".join(lines)


def run_demo(config, strategy, log=print):
    """Trains and evaluates both runs of `demo_configs(config)`.

    Args:
        config: the demo's `ExperimentConfig` (`demo_config`, or the flags with
            `demo_defaults`); its fine-tuning group is the SVF run's.
        strategy: a `tf.distribute.Strategy`.
        log: callable taking one line of text.

    Returns:
        {"freeze": summary, "svf": summary}.
    """
    from svf_tf.cli.train import train
    from svf_tf.weights.pretrained import resolve_weights

    if not config.data.synthetic:
        raise ValueError("--mode=demo trains on the built-in synthetic dataset; remove "
                         "--nosynthetic (a config's flagfile runs a real dataset).")
    if config.finetune.mode != "svf":
        raise ValueError(f"--mode=demo compares a frozen backbone with SVF; its fine-tuning "
                         f"group must be SVF's, not {config.finetune.mode!r}.")
    backbone = config.model.backbone
    try:
        weights = resolve_weights("imagenet", backbone, download=False)
        log(f"{backbone}: ImageNet weights from Keras' cache ({weights})")
    except (FileNotFoundError, ValueError):
        weights = None
        log(f"{backbone}: no ImageNet weights in Keras' cache; random "
            "initialisation (mIoU is then far below the paper's)")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, weights=weights))
    results = {}
    for name, run_config in demo_configs(config).items():
        log(f"\n=== {name}: {run_config.model.method} with a "
            f"{'frozen' if name == 'freeze' else 'SVF'} {backbone} ===")
        results[name] = train(run_config, strategy, log)
    table = format_table(results)
    log("\nbest validation mIoU on the synthetic dataset's novel classes (fold "
        f"{config.data.fold}, {config.data.shot}-shot, {config.data.test_episodes} "
        "episodes):\n" + table)
    write_json(os.path.join(config.run_dir, "summary.json"),
               {"mode": "demo", "weights": weights or "random", "table": table,
                "config": config.to_dict(),
                "runs": {k: {key: v[key] for key in ("best_miou", "last_eval",
                                                      "svf_trainable_values",
                                                      "other_trainable_values", "seconds",
                                                      "work_dir")}
                         for k, v in results.items()}})
    return results


def demo_mode(config, log=print):
    """`--mode=demo` (svf_tf/cli/main.py): `run_demo` under `config.run.strategy`."""
    from svf_tf.runs.strategy import make_strategy

    return run_demo(config, make_strategy(config.run.strategy), log)
