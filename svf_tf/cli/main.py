"""`main.py`'s body: the table of modes, the checks a job passes before it starts, dispatch.

`MODES` maps each `--mode` to the function that runs it, the settings it
reads and a one-line description. Before anything is built, `resolve_job`
refuses every flag the chosen mode does not read (given on the command line
or in a flagfile; one line naming it), builds the `ExperimentConfig` with the
mode's own defaults where a flag was not given, and checks that the dataset
is there (`check_dataset`). `run_job` then sets up Keras, writes flags.txt
and calls the mode's function, which TensorFlow is loaded for only then.

Settings that describe the experiment (data, model, fine-tuning,
optimisation) are read by train and also by eval/export/predict, which
rebuild the trained model from the same flagfile; what has no meaning in a
mode is refused.
"""

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable

from absl import flags

from svf_tf.cli.demo import demo_defaults
from svf_tf.config.experiment import SETTINGS
from svf_tf.config.flags import config_from_flags, flagfile_lines, given_flags

FLAGS = flags.FLAGS

#: The experiment's groups: what a trained model is rebuilt from.
EXPERIMENT = ("run", "data", "model", "finetune", "optim")
_NOT_EPISODES = "BAM's stage 1 trains and validates on whole images, not episodes"
_NOT_A_HEAD = "BAM's stage 1 is a PSPNet, without a few-shot head"
_ONLY_STAGE1 = "only --mode=train_base validates on a number of images"
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
    """

    function: str
    description: str
    uses: tuple
    unused: dict = dataclasses.field(default_factory=dict)
    defaults: Callable = lambda values: {}  # noqa: E731
    data_splits: tuple = ()


MODES = {
    "demo": Mode(
        "svf_tf.cli.demo:demo_mode",
        "a frozen backbone vs SVF on the built-in synthetic dataset, minutes on a CPU",
        EXPERIMENT,
        unused={"data.dataset": _SYNTHETIC, "data.data_root": _SYNTHETIC,
                "data.train_list": _SYNTHETIC, "data.val_list": _SYNTHETIC,
                "data.coco_split": _SYNTHETIC, "data.val_images": _ONLY_STAGE1,
                "model.weights": "the demo takes Keras' cached ImageNet weights, or random "
                                 "ones",
                "finetune.mode": "the demo trains --finetune=freeze and svf and compares them"},
        defaults=demo_defaults),
    "train": Mode(
        "svf_tf.cli.train:train_mode", "episodic meta-training of a few-shot model",
        EXPERIMENT, unused={"data.val_images": _ONLY_STAGE1}, data_splits=("train", "val")),
    "train_base": Mode(
        "svf_tf.cli.train:train_base_mode",
        "BAM's stage 1: a PSPNet on the fold's base classes (BAM train_base.py)",
        ("run", "data", "model", "optim"),
        unused={"data.shot": _NOT_EPISODES, "data.filter_novel": _NOT_EPISODES,
                "data.test_episodes": _NOT_EPISODES, "data.eval_seeds": _NOT_EPISODES,
                "data.episodes_dir": _NOT_EPISODES,
                "model.base_learner": "stage 1 writes the base learner",
                "model.kshot_reduce": _NOT_A_HEAD, "model.train_down_query": _NOT_A_HEAD,
                "model.pyramid_bins": _NOT_A_HEAD},
        defaults=lambda values: {"method": "bam"}, data_splits=("train", "val")),
    "eval": Mode(
        "svf_tf.cli.evaluate:eval_mode", "a checkpoint on the saved test episodes",
        (*EXPERIMENT, "checkpoint"), unused={"data.val_images": _ONLY_STAGE1},
        data_splits=("val",)),
    "export": Mode(
        "svf_tf.cli.export:export_mode", "a checkpoint, SVF merged, as a SavedModel",
        (*EXPERIMENT, "checkpoint", "export"), unused={"data.val_images": _ONLY_STAGE1}),
    "predict": Mode(
        "svf_tf.cli.predict:predict_mode",
        "segment a query image given support images and masks",
        (*EXPERIMENT, "checkpoint", "predict"), unused={"data.val_images": _ONLY_STAGE1}),
}

#: Why a whole group means nothing in the modes that do not read it.
_GROUP_USERS = {"checkpoint": "eval, export and predict", "export": "export",
                "predict": "predict", "finetune": "demo, train, eval, export and predict"}


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
    if name == "train_base" and spec.group == "finetune":
        return "stage 1 trains the whole backbone (BAM train_base.py)"
    return f"it is read by --mode={_GROUP_USERS.get(spec.group, spec.group)}"


def check_flags_used(name, given):
    """Raises ValueError (one line) if a given flag is not read by `--mode=name`."""
    unused = sorted(flag for flag in given if flag in SETTINGS and not uses(name, flag))
    if not unused:
        return
    first, rest = unused[0], unused[1:]
    also = f" (nor {', '.join('--' + f for f in rest)})" if rest else ""
    raise ValueError(
        f"--{first} is not used by --mode={name}{also} ({unused_reason(name, first)}); remove "
        "it, or choose a mode that reads it.")


def check_dataset(data, splits):
    """Fails fast, before any model is built, if the dataset of `data` is not there.

    Checks the root, and for each split its list file or the files the list
    is derived from (VOC's ImageSets/Segmentation/<split>.txt, COCO's
    annotations/<split>2014/). The synthetic dataset is generated on demand.
    """
    if data.synthetic or not splits:
        return
    if not data.data_root:
        raise ValueError(
            "No dataset: give --data_root (VOCdevkit/VOC2012 for Pascal, the COCO 2014 folder "
            "for COCO) or --synthetic for the built-in synthetic dataset.")
    if not os.path.isdir(data.data_root):
        raise FileNotFoundError(
            f"--data_root={data.data_root!r} does not exist: point it at the {data.dataset} "
            "root (VOCdevkit/VOC2012 for Pascal, the folder holding train2014/ val2014/ "
            "annotations/ for COCO), or use --synthetic.")
    from svf_tf.data.lists.list_files import derived_pairs

    for split in splits:
        list_file = data.train_list if split == "train" else data.val_list
        if list_file is None:
            derived_pairs(data.dataset, data.data_root, split)  # raises with the fix
        elif not os.path.isfile(list_file):
            raise FileNotFoundError(
                f"--{split}_list={list_file!r} does not exist: give an existing list file, or "
                f"leave it unset to derive the {split} list from --data_root.")


def resolve_job(flag_values=FLAGS):
    """(mode name, `ExperimentConfig`) of the parsed flags, after the checks above."""
    name = flag_values.mode
    mode = MODES[name]
    check_flags_used(name, given_flags(flag_values))
    values = {flag: flag_values[flag].value for flag in SETTINGS if flag in flag_values}
    config = config_from_flags(flag_values, unless_given=mode.defaults(values))
    check_dataset(config.data, mode.data_splits)
    return name, config


def flags_txt(name, config):
    """flags.txt of a `--mode=name` run: every setting it reads, resolved."""
    return "\n".join(flagfile_lines(config, [f for f in SETTINGS if uses(name, f)])) + "\n"


def run_job(name, config, log=print):
    """Sets up Keras, writes flags.txt, runs the mode's function; returns its result."""
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # TensorFlow's export chatter
    import keras
    import tensorflow as tf

    from svf_tf.runs.run_files import write_flags

    tf.get_logger().setLevel("ERROR")
    if config.run.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(config.run.mixed_precision)
    keras.utils.set_random_seed(config.run.seed)
    write_flags(os.path.join(config.run_dir, "flags.txt"), flags_txt(name, config))
    module, function = MODES[name].function.split(":")
    result = getattr(importlib.import_module(module), function)(config, log)
    print(f"\nwork directory: {config.run_dir}", file=sys.stderr)
    return result


def main(argv):
    """`main.py`: every option is a flag; the job is `--mode` (default demo)."""
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    run_job(*resolve_job(FLAGS))
