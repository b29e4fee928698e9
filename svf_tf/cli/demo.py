"""`--mode=demo`: frozen backbone vs SVF on the built-in synthetic dataset.

The README's first command. With no dataset and no internet it trains and
evaluates the SVF paper's baseline twice through the real training path,
once with a frozen backbone and once with SVF (singular values of layer2-4),
at a reduced resolution, and prints a comparison table.

SVF adapts a *pre-trained* backbone, so the demo starts from the synthetic
pre-trained backbone (`svf_tf.weights.synthetic_backbone`: made on this
machine the first time, about 15 minutes on 2 CPU cores, then cached), or
from `--weights` (a file, or 'imagenet' for Keras' ImageNet file). The table
ends with two references measured on the same test episodes: the model before
training (the frozen run's initial weights) and predicting every pixel as
foreground (`svf_tf.data.synthetic.baselines`), the best a model reaches
without looking at the images.
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


def format_table(results, references=None):
    """The demo's table: one row per run, then the reference rows (mIoU only)."""
    lines = [f"{'backbone':<14} {'mIoU':>7} {'FB-IoU':>7} {'trainable values':>17} "
             f"{'backbone values':>16} {'minutes':>8}"]
    for name, summary in results.items():
        # The best checkpoint's evaluation; minutes: all the run's epochs, however often resumed.
        report = summary["best_eval"] or {}
        lines.append(f"{name:<14} {100 * report.get('miou', 0.0):7.2f} "
                     f"{100 * report.get('fb_iou', 0.0):7.2f} "
                     f"{summary['svf_trainable_values'] + summary['other_trainable_values']:>17,}"
                     f" {summary['svf_trainable_values']:>16,} "
                     f"{summary['train_seconds'] / 60:8.1f}")
    for name, report in (references or {}).items():
        fb_iou = f"{100 * report['fb_iou']:7.2f}" if "fb_iou" in report else f"{'':>7}"
        lines.append(f"{name:<14} {100 * report['miou']:7.2f} {fb_iou}")
    return "\n".join(lines)


def demo_weights(config, log=print):
    """The backbone file the demo starts from: `--weights`, else the synthetic pre-trained one."""
    from svf_tf.weights.synthetic_backbone import ensure_synthetic_backbone

    model = config.model
    if model.weights:
        return model.weights  # the backbone builder resolves 'imagenet' and checks a file
    options = {"stem": model.stem} if model.backbone == "resnet50" else {}
    if model.backbone == "resnet50":
        options["dilation"] = model.dilation
    elif not model.vgg_batch_norm:
        raise ValueError("--mode=demo: the synthetic pre-trained VGG16 is VGG16-BN; remove "
                         "--novgg_batch_norm, or give --weights=imagenet.")
    return ensure_synthetic_backbone(model.backbone, cache_dir=config.data.cache_dir, log=log,
                                     **options)


def reference_scores(config, strategy, log=print):
    """{"untrained", "all foreground"} reports on `config`'s test episodes.

    "untrained" is the model the frozen run starts from (same seed, same
    weights), scored before any step; "all foreground" predicts every pixel
    as the episode's class (`svf_tf.data.synthetic.baselines`).
    """
    import keras

    from svf_tf.data.episodes.episode_files import load_or_create_test_episodes
    from svf_tf.data.synthetic.baselines import baseline_miou
    from svf_tf.tasks.few_shot import FewShotTask

    task = FewShotTask(config, log)
    keras.utils.set_random_seed(config.run.seed)  # as the trainer does before building
    with strategy.scope():
        model = task.build_model()
    untrained = task.make_validation(model)()
    data = config.data
    episodes = load_or_create_test_episodes(task.episode_file, task.fold_lists("val"),
                                            shot=data.shot, seed=data.eval_seeds[0],
                                            num_episodes=data.test_episodes)
    foreground = baseline_miou(episodes, task.num_novel)["all_foreground"]
    return {"untrained": {"miou": float(untrained["miou"]),
                          "fb_iou": float(untrained["fb_iou"])},
            "all foreground": {"miou": foreground}}


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

    if not config.data.synthetic:
        raise ValueError("--mode=demo trains on the built-in synthetic dataset; remove "
                         "--nosynthetic (a config's flagfile runs a real dataset).")
    if config.finetune.mode != "svf":
        raise ValueError(f"--mode=demo compares a frozen backbone with SVF; its fine-tuning "
                         f"group must be SVF's, not {config.finetune.mode!r}.")
    backbone = config.model.backbone
    weights = demo_weights(config, log)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, weights=weights))
    results = {}
    for name, run_config in demo_configs(config).items():
        log(f"\n=== {name}: {run_config.model.method} with a "
            f"{'frozen' if name == 'freeze' else 'SVF'} {backbone} ===")
        results[name] = train(run_config, strategy, log)
    log("\n=== references on the same test episodes ===")
    references = reference_scores(demo_configs(config)["freeze"], strategy, log)
    table = format_table(results, references)
    log("\nbest validation mIoU on the synthetic dataset's novel classes (fold "
        f"{config.data.fold}, {config.data.shot}-shot, {config.data.test_episodes} "
        "episodes):\n" + table)
    write_json(os.path.join(config.run_dir, "summary.json"),
               {"mode": "demo", "weights": weights, "table": table,
                "references": references,
                "config": config.to_dict(),
                "runs": {k: {key: v[key] for key in ("best_miou", "best_eval", "last_eval",
                                                      "svf_trainable_values",
                                                      "other_trainable_values", "seconds",
                                                      "train_seconds", "work_dir")}
                         for k, v in results.items()}})
    return results


def demo_mode(config, log=print):
    """`--mode=demo` (svf_tf/cli/main.py): `run_demo` under `config.run.strategy`."""
    from svf_tf.runs.strategy import run_strategy

    return run_demo(config, run_strategy(config), log)
