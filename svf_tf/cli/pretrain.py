"""The pre-training modes: `--mode=pretrain` (a fold) and `--mode=pretrain_synthetic`.

`--mode=pretrain` pre-trains a backbone on a fold's base classes, Standard
(BAM's stage 1) or BCPT (`svf_tf.bcpt`), as the BCPT paper's first stage:

    python main.py --mode=pretrain --synthetic --pretrain=bcpt --fold=0

`--mode=pretrain_synthetic` pre-trains a backbone on the synthetic corpus, and caches it:

    python main.py --mode=pretrain_synthetic                   # ResNet-50, ~15 min on 2 cores
    python main.py --mode=pretrain_synthetic --backbone=vgg16  # VGG16-BN

Trains `SyntheticPretrainTask` in `--work_dir` (default
runs/pretrain_synthetic_{backbone}; resumable like every training run), then
copies the best backbone into the cache entry of its settings
(`svf_tf.weights.synthetic_backbone`), where `ensure_synthetic_backbone`
finds it, so a later call with the same settings does not train again.
"""

from svf_tf.bcpt.task import BCPTTask, StandardPretrainTask
from svf_tf.data.cache import check_cache_dir
from svf_tf.runs.strategy import run_strategy
from svf_tf.runs.trainer import run_training
from svf_tf.tasks.synthetic_pretrain import pretrain
from svf_tf.weights import synthetic_backbone


def pretrain_synthetic_mode(config, log=print):
    """`--mode=pretrain_synthetic` (svf_tf/cli/main.py); returns the run summary."""
    check_cache_dir(config.data.cache_dir)  # before training: the result goes there
    summary = pretrain(config, run_strategy(config), log)
    entry = synthetic_backbone.entry_dir(config)
    cached, _ = synthetic_backbone.check_entry(entry,
                                               synthetic_backbone.cache_settings(config))
    if cached is None:
        cached = synthetic_backbone.publish(config, summary["backbone_weights"], summary)
    variant = summary["backbone_options"]
    options = (f" --stem={variant['stem']}" if "stem" in variant
               else " --vgg_batch_norm" if variant.get("batch_norm") else "")
    log(f"best validation mIoU {summary['best_miou']:.4f}; backbone: "
        f"--backbone={config.model.backbone}{options} --weights={cached} (cached; "
        f"{summary['backbone_weights']} is the run's copy)")
    summary["cached_weights"] = cached
    return summary


def pretrain_fold(config, strategy, log=print, checkpoint_every=500):
    """`--mode=pretrain`'s run (Standard or BCPT, `config.pretraining.scheme`); its summary."""
    task_class = BCPTTask if config.pretraining.scheme == "bcpt" else StandardPretrainTask
    return run_training(task_class(config, log), strategy, log=log,
                        checkpoint_every=checkpoint_every)


def pretrain_mode(config, log=print):
    """`--mode=pretrain` (svf_tf/cli/main.py) under `config.run.strategy`."""
    summary = pretrain_fold(config, run_strategy(config), log)
    log(f"best validation base-class mIoU {summary['best_miou']:.4f}; pre-trained backbone: "
        f"--weights={summary['backbone_weights']}")
    return summary
