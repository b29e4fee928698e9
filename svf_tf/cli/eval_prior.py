"""`--mode=eval_prior`: a backbone without a head, scored by PFENet's prior thresholded.

BCPT paper Table 2 (`svf_tf.bcpt.prior_evaluation`). Any backbone weights:
none (random), `--weights=imagenet` (with `--stem=keras` for ResNet-50), a
pre-training run's `best/backbone.weights.h5`, the synthetic pre-trained
backbone:

    python main.py --mode=eval_prior --synthetic --backbone=vgg16 \\
        --weights=runs/pascal_vgg16_bcpt_pretrain_fold0/best/backbone.weights.h5

The backbone variant is the pre-training's (BAM's: deep stem, every
layer3/layer4 block dilated; VGG16-BN) unless --stem/--dilation/
--vgg_batch_norm say otherwise. Each result is added to
`<work_dir>/eval_prior.json` under its weights and threshold, so the
backbones of a comparison evaluated into one directory sit side by side.
"""

import os

from svf_tf.backbones import build_backbone
from svf_tf.bcpt.prior_evaluation import build_prior_model, make_prior_predict_fn
from svf_tf.cli.evaluate import format_report
from svf_tf.metrics.evaluation import summarize_seeds
from svf_tf.runs.run_files import read_json, write_json
from svf_tf.runs.strategy import in_scope, is_chief
from svf_tf.tasks.few_shot import FewShotTask

REPORT_FILE = "eval_prior.json"


def evaluate_prior(config, log=print, strategy=None):
    """The prior of `config`'s backbone on every seed of `config.data.eval_seeds`.

    `strategy`: a multi-worker strategy splits each seed's episodes over its
    workers (`FewShotTask.seed_evaluation`: the same report); only its chief
    writes eval_prior.json.

    Returns:
        {"weights", "threshold", "seeds", "reports", "summary", "conventions"};
        also added to `<work_dir>/eval_prior.json` (key: weights @ threshold).
    """
    model, data = config.model, config.data
    threshold = config.prior_evaluation.threshold
    with in_scope(strategy):
        backbone = build_backbone(model.backbone, model.weights, finetune="freeze",
                                  partial_weights=model.partial_weights,
                                  **model.backbone_options())
        prior_model = build_prior_model(backbone, data.shot)
    predict = make_prior_predict_fn(prior_model, threshold)
    task = FewShotTask(config, log)
    reports = []
    for seed in data.eval_seeds:
        evaluate = task.seed_evaluation(predict, seed, strategy, verbose=1)
        log(f"seed {seed}: {data.test_episodes} episodes from {task.episode_file}")
        reports.append(evaluate())
    weights = model.weights or "random"
    result = {
        "weights": weights,
        "threshold": threshold,
        "seeds": list(data.eval_seeds),
        "reports": reports,
        "summary": summarize_seeds(reports),
        "conventions": {
            "prior": "PFENet's: layer4(layer3 * mask) of the support, cosine to the query's "
                     "layer4, max over support pixels, min-max normalised; shots averaged",
            "mask": f"foreground where the prior, resized to the label, > {threshold}",
            "backbone": f"{model.backbone} {model.backbone_options()}, weights {weights}",
            "episodes per seed": data.test_episodes,
            "resolution": "original label resolution (align_corners resize)",
            "mIoU": "per novel class, intersections and unions summed over episodes",
        },
    }
    if strategy is None or is_chief(strategy):
        path = os.path.join(config.run_dir, REPORT_FILE)
        results = read_json(path) if os.path.isfile(path) else {}
        results[f"{weights} @ {threshold:g}"] = result
        os.makedirs(config.run_dir, exist_ok=True)
        write_json(path, results)
    log(format_report(result))
    return result


def eval_prior_mode(config, log=print, strategy=None):
    """`--mode=eval_prior` (svf_tf/cli/main.py)."""
    return evaluate_prior(config, log, strategy)
