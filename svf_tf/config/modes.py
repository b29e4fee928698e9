"""The modes of `main.py` and the settings each reads: one table, TensorFlow-free.

`MODES` maps each `--mode` to the function that runs it (a "module:function"
string, imported only when the job runs), the settings it reads, its own
defaults and the dataset splits it needs. `uses(mode, flag)` is the one
answer to "does this mode read this setting": the command line refuses flags
a mode does not read (svf_tf/cli/main.py), flags.txt lists exactly the
settings a training mode read, and a run's identity (svf_tf/runs/identity.py)
is taken from them.
"""

import dataclasses
from collections.abc import Callable

from svf_tf.config.experiment import (
    BASE_WORK_DIR,
    PRETRAIN_WORK_DIR,
    PRETRAINING_WORK_DIR,
    PRIOR_WORK_DIR,
    SETTINGS,
)

# Sizes chosen so that the few-shot heads learn, measured on 2 CPU cores with the
# synthetic pre-trained ResNet-50 (frozen backbone, batch 8, lr 0.05, 100 test
# episodes): they predict background everywhere (mIoU 0) until about 500 steps (0 at
# 50, 200 and 440 steps), then 33.5 at 660 and 8.6 at 880 steps; the curve is unstable
# and the best evaluation is kept (the references' checkpoint selection). Neither a larger
# rate (SGD at 0.2) nor AdamW at 1e-3 predicted any foreground by 200 steps either: the
# steps, not the optimiser, are what the heads need. So 20 epochs
# of the whole train list (44 steps of batch 8), scored every 5: 880 steps a run,
# 27 minutes frozen and 41 with SVF (other jobs shared the machine part of the time).
# The earlier 2 x 25 steps (7 minutes for both runs) learned only the background
# prior; `--epochs=2 --steps_per_epoch=25
# --eval_every=1` still runs them as a quick check of the path.
# The synthetic images (160-320 px) are tested resized to 65 px, about 0.25 of
# their size, so training scales them by 0.2-0.3 before the 65 px crop: the
# crop then holds the whole image at test-time scale, as a 473 crop does on
# Pascal (the preset's 0.9-1.1 would train on 65 px windows at full size).
DEMO_SETTINGS = {"train_size": 65, "test_size": 65, "scale_range": (0.2, 0.3), "epochs": 20,
                 "steps_per_epoch": 0, "batch_size": 8, "test_episodes": 100, "eval_every": 5,
                 "early_stop": 0, "lr": 0.05, "lr_schedule": "constant"}


def demo_defaults(values):
    """The demo's settings where the user gave no flag (`--epochs=10` still wins).

    Args:
        values: {setting: value} of the parsed flags. The backbone variant is
            the synthetic pre-trained one (Keras' 7x7 stem; VGG16-BN), except
            that `--weights=imagenet` on VGG16 takes Keras' plain VGG16.
    """
    defaults = {**DEMO_SETTINGS, "synthetic": True, "work_dir": "runs/demo"}
    if values.get("backbone", "resnet50") == "resnet50":
        defaults["stem"] = "keras"
    elif values.get("weights") != "imagenet":
        defaults["vgg_batch_norm"] = True
    return defaults


# Synthetic pre-training of ResNet-50 (Keras stem, torchvision dilation) at the demo's
# 65 px, batch 8: 600 steps took 14.3 minutes with validation on this 2-core CPU while
# other jobs ran (load average 2.5-4.5; 1.1-1.7 s a step). SGD with momentum 0.9 and
# weight decay 1e-4, cosine decay from 0.02 (in a first trial 0.05 drove conv1's
# BatchNorm variance past the divergence guard within 50 steps).
PRETRAIN_SETTINGS = {"train_size": 65, "epochs": 4, "steps_per_epoch": 150, "batch_size": 8,
                     "lr": 0.02, "lr_schedule": "cosine", "eval_every": 1, "early_stop": 0}


def pretrain_defaults(values):
    """`--mode=pretrain_synthetic`'s settings where the user gave no flag.

    The backbone variant is the demo's (Keras' stem, torchvision's dilation;
    VGG16-BN), with its BatchNorm statistics trained as ImageNet training does.
    """
    defaults = {**PRETRAIN_SETTINGS, "work_dir": PRETRAIN_WORK_DIR, "backbone_bn": "batch_stats"}
    if values.get("backbone", "resnet50") == "resnet50":
        defaults.update(stem="keras", dilation="torchvision")
    else:
        defaults["vgg_batch_norm"] = True
    return defaults


#: The experiment's groups: what a trained model is rebuilt from.
EXPERIMENT = ("run", "data", "model", "finetune", "optim")
_NOT_EPISODES = "BAM's stage 1 trains and validates on whole images, not episodes"
_NOT_A_HEAD = "BAM's stage 1 is a PSPNet, without a few-shot head"
_ONLY_STAGE1 = "only --mode=train_base validates on a number of images"
#: What BAM's stage 1 and the pre-training built on it do not read.
_STAGE1_UNUSED = {"data.shot": _NOT_EPISODES, "data.filter_novel": _NOT_EPISODES,
                  "data.test_episodes": _NOT_EPISODES, "data.eval_seeds": _NOT_EPISODES,
                  "data.episodes_dir": _NOT_EPISODES, "model.kshot_reduce": _NOT_A_HEAD,
                  "model.train_down_query": _NOT_A_HEAD, "model.pyramid_bins": _NOT_A_HEAD}
_PRIOR_ONLY_TESTS = "the prior is evaluated on the saved test episodes; nothing trains"
_SYNTHETIC = "the demo trains on the built-in synthetic dataset; run a config for a real one"


@dataclasses.dataclass(frozen=True)
class Mode:
    """One `--mode`.

    Attributes:
        function: "module:function" taking (config, log) and returning the
            job's result; imported when the job runs.
        description: one line (errors and --helpfull).
        uses: the groups ("data") and single settings ("data.fold") it reads.
        unused: {"group.field": why} of settings inside `uses` it does not read.
        defaults: settings whose default differs in this mode, as a function
            of the parsed flag values (applied where the flag was not given).
        data_splits: the dataset splits it reads, checked before any model is
            built.
        kind: "trains" (creates or resumes a run: run.json, flags.txt, the
            lock), "reads_run" (rebuilds a recorded run's model from its
            run.json), "evaluates" (builds what it scores from the flags and
            writes its report into --work_dir) or "demo".
        splits: the function also takes `strategy=` (from --strategy) and
            splits its work over a multi-worker job's workers; main.py builds
            the strategy first, and only the chief locks --work_dir and writes.
    """

    function: str
    description: str
    uses: tuple
    unused: dict = dataclasses.field(default_factory=dict)
    defaults: Callable = lambda values: {}  # noqa: E731
    data_splits: tuple = ()
    kind: str = "trains"
    splits: bool = False


MODES = {
    "demo": Mode(
        "svf_tf.cli.demo:demo_mode",
        "a frozen backbone vs SVF on the built-in synthetic dataset (about an hour on 2 CPU "
        "cores)",
        EXPERIMENT,
        unused={"data.dataset": _SYNTHETIC, "data.data_root": _SYNTHETIC,
                "data.train_list": _SYNTHETIC, "data.val_list": _SYNTHETIC,
                "data.coco_split": _SYNTHETIC, "data.val_images": _ONLY_STAGE1,
                "finetune.mode": "the demo trains --finetune=freeze and svf and compares them"},
        defaults=demo_defaults, kind="demo"),
    "train": Mode(
        "svf_tf.cli.train:train_mode", "episodic meta-training of a few-shot model",
        EXPERIMENT, unused={"data.val_images": _ONLY_STAGE1}, data_splits=("train", "val")),
    "train_base": Mode(
        "svf_tf.cli.train:train_base_mode",
        "BAM's stage 1: a PSPNet on the fold's base classes (BAM train_base.py)",
        ("run", "data", "model", "optim"),
        unused={**_STAGE1_UNUSED, "model.base_learner": "stage 1 writes the base learner"},
        defaults=lambda values: {"method": "bam", "work_dir": BASE_WORK_DIR},
        data_splits=("train", "val")),
    "pretrain": Mode(
        "svf_tf.cli.pretrain:pretrain_mode",
        "Standard or BCPT pre-training of the backbone on the fold's base classes (BCPT "
        "paper Sec. 2; Standard is BAM's stage 1)",
        ("run", "data", "model", "optim", "pretraining"),
        unused={**_STAGE1_UNUSED, "model.base_learner": "pre-training writes a backbone"},
        defaults=lambda values: {"method": "bam", "work_dir": PRETRAINING_WORK_DIR},
        data_splits=("train", "val")),
    "pretrain_synthetic": Mode(
        "svf_tf.cli.pretrain:pretrain_synthetic_mode",
        "pre-train a backbone on the synthetic corpus of 100 shape x texture classes (the "
        "offline stand-in for ImageNet) and cache it for --weights",
        ("run", "data.train_size", "data.cache_dir", "model.backbone", "model.stem",
         "model.dilation", "optim", "pretrain"),
        unused={"optim.backbone_lr_ratio": "the whole network trains at --lr"},
        defaults=pretrain_defaults),
    "eval": Mode(
        "svf_tf.cli.evaluate:eval_mode", "a checkpoint on the saved test episodes",
        (*EXPERIMENT, "checkpoint"), unused={"data.val_images": _ONLY_STAGE1},
        data_splits=("val",), kind="reads_run", splits=True),
    "eval_prior": Mode(
        "svf_tf.cli.eval_prior:eval_prior_mode",
        "a backbone without a head: PFENet's prior thresholded, on the saved test episodes "
        "(BCPT paper Table 2)",
        ("run.mode", "run.work_dir", "run.seed", "run.strategy", "run.worker_timeout", "data",
         "model.backbone", "model.stem",
         "model.dilation", "model.vgg_batch_norm", "model.weights", "model.partial_weights",
         "prior_evaluation"),
        unused={"data.train_list": _PRIOR_ONLY_TESTS, "data.train_size": _PRIOR_ONLY_TESTS,
                "data.scale_range": _PRIOR_ONLY_TESTS, "data.val_images": _ONLY_STAGE1},
        defaults=lambda values: {"method": "bam", "work_dir": PRIOR_WORK_DIR},
        data_splits=("val",), kind="evaluates", splits=True),
    "export": Mode(
        "svf_tf.cli.export:export_mode", "a checkpoint, SVF merged, as a SavedModel",
        (*EXPERIMENT, "checkpoint", "export"),
        unused={"data.val_images": _ONLY_STAGE1,
                "checkpoint.merge_svf": "export always merges: the SavedModel holds plain "
                                        "layers"},
        kind="reads_run"),
    "predict": Mode(
        "svf_tf.cli.predict:predict_mode",
        "segment a query image given support images and masks",
        (*EXPERIMENT, "checkpoint", "predict"),
        unused={"data.val_images": _ONLY_STAGE1,
                "checkpoint.merge_svf": "predict runs one episode, where merging costs more "
                                        "than it saves"},
        kind="reads_run"),
    "analyze": Mode(
        "svf_tf.cli.analyze:analyze_mode",
        "figures of finished runs: singular-value change, U-subspace cue maps, mIoU curves, "
        "prediction gallery (svf_tf/analysis/)",
        (*EXPERIMENT, "checkpoint", "analysis"),
        unused={"data.val_images": _ONLY_STAGE1,
                "checkpoint.adapter": "analyze draws the factors the run trained (its "
                                      "checkpoint), not another adapter's",
                "checkpoint.merge_svf": "analyze draws the factors the run trained"},
        kind="reads_run"),
}

#: Why synthetic pre-training reads none of a group's other settings.
_NOT_PRETRAINING = {
    "data": "pre-training draws its own synthetic corpus, not a dataset",
    "model": "pre-training trains a backbone alone (VGG16-BN; BatchNorm statistics trained) "
             "under shape and texture classifiers, not a few-shot model",
    "finetune": "pre-training trains the whole backbone",
}


def uses(name, flag):
    """Whether `--mode=name` reads setting `flag`."""
    spec, mode = SETTINGS[flag], MODES[name]
    key = f"{spec.group}.{spec.field}"
    return (spec.group in mode.uses or key in mode.uses) and key not in mode.unused


def unused_reason(name, flag):
    """Why `--mode=name` does not read `flag` (None if it does)."""
    if uses(name, flag):
        return None
    spec, mode = SETTINGS[flag], MODES[name]
    key = f"{spec.group}.{spec.field}"
    if key in mode.unused:
        return mode.unused[key]
    if name in ("train_base", "pretrain") and spec.group == "finetune":
        return "stage 1 trains the whole backbone (BAM train_base.py)"
    if name == "eval_prior" and spec.group in ("run", "model", "finetune", "optim"):
        return "eval_prior scores a backbone alone: nothing trains and no head is built"
    if name == "pretrain_synthetic" and spec.group in _NOT_PRETRAINING:
        return _NOT_PRETRAINING[spec.group]
    readers = [other for other in MODES if uses(other, flag)]
    if not readers:
        return "no mode reads it"
    listed = readers[0] if len(readers) == 1 else f"{', '.join(readers[:-1])} and {readers[-1]}"
    return f"it is read by --mode={listed}"


def mode_settings(name):
    """The settings (flag names) `--mode=name` reads, in registry order."""
    return [flag for flag in SETTINGS if uses(name, flag)]
