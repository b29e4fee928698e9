"""`--mode=eval`: a checkpoint on the saved test episodes, one or several seeds."""

import os

import svf_tf
from svf_tf.metrics.evaluation import summarize_seeds
from svf_tf.runs.restore import restore_model
from svf_tf.runs.run_files import write_json
from svf_tf.runs.strategy import in_scope, is_chief
from svf_tf.tasks.few_shot import FewShotTask


def format_report(result):
    """A table a person can read: per seed, then mean and std, then the conventions."""
    lines = [f"{'seed':>6}  {'mIoU':>7}  {'FB-IoU':>7}  {'episodes':>8}"]
    for seed, report in zip(result["seeds"], result["reports"], strict=True):
        lines.append(f"{seed:>6}  {100 * report['miou']:7.2f}  {100 * report['fb_iou']:7.2f}  "
                     f"{report['episodes']:>8}")
    summary = result["summary"]
    if len(result["seeds"]) > 1:
        lines.append(f"{'mean':>6}  {100 * summary['miou_mean']:7.2f}  "
                     f"{100 * summary['fb_iou_mean']:7.2f}   (std {100 * summary['miou_std']:.2f}"
                     f" / {100 * summary['fb_iou_std']:.2f})")
    conventions = result["conventions"]
    lines.append("conventions: " + "; ".join(f"{k}: {v}" for k, v in conventions.items()))
    return "\n".join(lines)


def evaluate_checkpoint(config, checkpoint_path=None, log=print, adapters=(), strategy=None,
                        merge=True):
    """Evaluates a checkpoint (default: the run's best) on every seed of `config.data.eval_seeds`.

    `adapters`: at most one adapter file, loaded over the checkpoint's SVF layers.
    `strategy`: a multi-worker strategy splits each seed's episodes over its
    workers (`FewShotTask.seed_evaluation`: the same report); only its chief
    writes eval.json.
    `merge`: score the model with its SVF layers merged (`evaluation_model`).

    Returns:
        A dict with per-seed reports, their mean/std summary and the
        evaluation conventions; also written to `<work_dir>/eval.json`.
    """
    task = FewShotTask(config, log)
    with in_scope(strategy):
        model, restored = restore_model(task, checkpoint_path, adapters)
        model = evaluation_model(model, merge)
    predict = task.make_predict_fn(model)
    reports, files = [], []
    for seed in config.data.eval_seeds:
        evaluate = task.seed_evaluation(predict, seed, strategy, verbose=1)
        log(f"seed {seed}: {config.data.test_episodes} episodes from {task.episode_file}")
        reports.append(evaluate())
        files.append(task.episode_file)
    result = {
        "checkpoint": restored,
        "adapter": list(adapters),
        "seeds": list(config.data.eval_seeds),
        "reports": reports,
        "summary": summarize_seeds(reports),
        "conventions": {
            "episodes per seed": config.data.test_episodes,
            "seeds": ",".join(str(s) for s in config.data.eval_seeds),
            "resolution": "original label resolution (logits resized with align_corners)",
            "ignored": "255 pixels",
            "mIoU": "per novel class, intersections and unions summed over episodes",
            "checkpoint": restored,
            "dagger filter in training": config.data.filter_novel,
            "test size": config.data.test_size,
            "SVF layers": "merged (one kernel each)" if merge else "as trained (factored)",
        },
        "episode_files": files,
    }
    if strategy is None or is_chief(strategy):
        write_json(os.path.join(config.run_dir, "eval.json"), result)
    log(format_report(result))
    return result


def evaluation_model(model, merge=True):
    """The model `--mode=eval` scores: with `merge`, its SVF layers merged.

    `svf_tf.merge_svf` folds each layer's V diag(S) U^T into one plain kernel:
    the same logits to float rounding, and inference at the plain model's
    cost instead of the factored form's extra 1x1 convolution per layer
    (about a fifth more work in each SVF conv of ResNet-50's layer2-4). A
    model without SVF layers is returned as is.
    """
    return svf_tf.merge_svf(model) if merge else model


def eval_mode(config, log=print, strategy=None):
    """`--mode=eval` (svf_tf/cli/main.py): `--checkpoint` or the run's best."""
    return evaluate_checkpoint(config, config.checkpoint.checkpoint, log,
                               config.checkpoint.adapter, strategy, config.checkpoint.merge_svf)
