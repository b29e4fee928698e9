"""A backbone pre-trained on a fold serves that fold only: `check_pretrained_backbone`.

Pre-training (`--mode=pretrain`, Standard or BCPT, and BAM's stage 1
`--mode=train_base`) trains the backbone on a fold's base classes, i.e. on
every class that is not that fold's novel: the base classes of fold 1
include fold 0's novel classes, annotated. Meta-training or evaluating
fold 0 on it would test on classes the backbone was supervised on. When
`--weights` lies inside such a run (its run.json is found above the file),
the run's dataset, fold, class split and backbone variant must be this
job's; otherwise the job stops in one line before anything is built.
TensorFlow-free.
"""

from svf_tf.runs import identity

#: Modes whose runs write a pre-trained backbone (best/backbone.weights.h5).
PRETRAINING_MODES = ("pretrain", "train_base")
#: What must agree, and why (the message's fix).
_MUST_MATCH = {
    "dataset": "its classes are another dataset's",
    "fold": "a backbone pre-trained on fold {recorded} has seen fold {current}'s novel "
            "classes annotated",
    "coco_split": "a backbone pre-trained on one split has seen the other's novel classes "
                  "annotated",
    "backbone": "its weights are another network's",
    "stem": "its weights are another stem's",
    "vgg_batch_norm": "its weights are another VGG variant's",
}


def check_pretrained_backbone(config, mode):
    """Raises ValueError (one line) if `--weights` comes from a pre-training run that does not fit.

    Args:
        config: the job's `ExperimentConfig`.
        mode: the job's `--mode` (for the message).

    Returns:
        The pre-training run's record, or None when `--weights` is not inside one.
    """
    path = config.model.weights
    if not path or path == "imagenet":
        return None
    run_dir = identity.find_run_dir(path)
    record = None if run_dir is None else identity.read_record(run_dir)
    if record is None or record["mode"] not in PRETRAINING_MODES:
        return None
    values = config.settings()
    for name, why in _MUST_MATCH.items():
        recorded = record["settings"].get(name)
        current = identity.setting_text(name, values[name])
        if name in record["settings"] and recorded != current:
            fix = (f"pre-train on fold {current} (--mode=pretrain --fold={current})"
                   if name == "fold" else f"use a pre-training run with --{name}={current}")
            raise ValueError(
                f"--weights={path!r} comes from a --mode={record['mode']} run with "
                f"--{name}={recorded} ({run_dir}); this --mode={mode} job has --{name}="
                f"{current}, and {why.format(recorded=recorded, current=current)}: {fix} and "
                "pass its best/backbone.weights.h5.")
    return record
