"""`main.py`'s body: the checks a job passes before it starts, and dispatch.

The table of modes (which function runs each `--mode`, which settings it
reads) is `svf_tf.config.modes.MODES`. Before anything is built,
`resolve_job` refuses every flag the chosen mode does not read (given on the
command line or in a flagfile; one line naming it) and builds the
`ExperimentConfig`:

- training modes (train, train_base, pretrain): from the flags, with the mode's own
  defaults where a flag was not given; a work directory that holds another
  experiment is refused here already, before TensorFlow loads
  (svf_tf/runs/identity.py; the trainer checks it again under the run's
  lock, with the data lists' fingerprints);
- eval, export, predict, analyze: from the run directory's run.json, so
  `python main.py --mode=export --work_dir=runs/demo/svf` just works; only
  settings the job may change (test episodes, seeds, where files are) are
  taken from the command line, and an identity setting given with another
  value is refused;

then refuses `--weights` from a pre-training run of another dataset, fold,
class split or backbone (`svf_tf.runs.pretrained_run`: a backbone
pre-trained on fold 1 has seen fold 0's novel classes annotated) and
checks that the dataset is there (`check_dataset`). `run_job` loads
TensorFlow, takes the run directory's lock for the jobs that write into it
(training takes it in the trainer), logs the invocation in
`<work_dir>/jobs.log` and calls the mode's function. Only a training run
writes flags.txt, once, when it creates its directory. A mode that splits
its work over workers (`Mode.splits`: eval, eval_prior) under
`--strategy=multi_worker` gets its strategy first: only the chief locks and
logs, and every worker stops if it cannot (`entered_together`).
"""

import importlib
import os
import signal
import sys

from absl import flags

from svf_tf.cli.paths import ensure_writable_dir
from svf_tf.config.experiment import SETTINGS
from svf_tf.config.flags import config_from_flags, given_flags
from svf_tf.config.modes import MODES, mode_settings, unused_reason, uses
from svf_tf.runs import identity
from svf_tf.runs.interrupts import TrainingInterrupted
from svf_tf.runs.pretrained_run import check_pretrained_backbone
from svf_tf.runs.run_files import log_job

FLAGS = flags.FLAGS
__all__ = ["MODES", "check_dataset", "check_flags_used", "main", "resolve_job", "run_job",
           "uses"]


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


def check_new_run(config, name):
    """Refuses, before TensorFlow loads, a work directory that holds another experiment.

    The same check runs again in the trainer under the run's lock, with the
    data lists' fingerprints; this one gives the one-line answer in a
    fraction of a second.
    """
    record = identity.read_record(config.run_dir)
    if record is not None and identity.has_checkpoints(config.run_dir):
        current = identity.make_record(config, name, mode_settings(name))
        identity.check_resume(record, current, config.run_dir)


def job_run_dir(config, checkpoint):
    """The run directory a job reading a run reads: `--checkpoint`'s run, or --work_dir."""
    if checkpoint:
        found = identity.find_run_dir(checkpoint)
        if found:
            return found
    return config.run_dir


def recorded_config(name, flag_values, flags_config, given):
    """The config of a job reading a run: the run's run.json, plus the given flags."""
    checkpoint = flags_config.checkpoint.checkpoint
    run_dir = job_run_dir(flags_config, checkpoint)
    record = identity.read_record(run_dir)
    if record is None:
        if checkpoint:
            print(f"note: {checkpoint!r} is not inside a run directory with a run.json; the "
                  "model is built from the flags given.", file=sys.stderr)
            return flags_config
        inside = identity.runs_inside(run_dir)
        if inside:
            raise FileNotFoundError(
                f"{run_dir!r} holds no run itself but these: {', '.join(inside)}; pass one of "
                "them as --work_dir.")
        raise FileNotFoundError(
            f"No trained run in {run_dir!r} (no run.json): give the --work_dir of a run "
            "--mode=train wrote, or train one with these flags first; a checkpoint from "
            "elsewhere takes --checkpoint=<path> with its experiment's flags.")
    if record["mode"] != "train":
        raise ValueError(
            f"{run_dir!r} is a --mode={record['mode']} run (BAM's stage 1, a PSPNet); "
            f"--mode={name} takes a few-shot run: the work directory of --mode=train or of "
            "the demo's runs.")
    values = {flag: flag_values[flag].value for flag in given if uses(name, flag)}
    values.pop("work_dir", None)
    return identity.config_from_record(record, values, run_dir, name)


def check_job_paths(name, config):
    """Refuses, before anything is written, a directory this job cannot write (one line)."""
    from svf_tf.data.cache import check_cache_dir

    mode = MODES[name]
    ensure_writable_dir(config.run_dir, "--work_dir", create=False)
    if mode.data_splits or mode.kind == "demo":
        check_cache_dir(config.data.cache_dir)
    if config.data.episodes_dir and uses(name, "episodes_dir"):
        ensure_writable_dir(config.data.episodes_dir, "--episodes_dir", create=False)
    if name == "export":
        ensure_writable_dir(config.export.export_dir
                            or os.path.join(config.run_dir, "saved_model"), "--export_dir",
                            create=False)


def resolve_job(flag_values=FLAGS):
    """(mode name, `ExperimentConfig`) of the parsed flags, after the checks above."""
    name = flag_values.mode
    mode = MODES[name]
    given = given_flags(flag_values)
    check_flags_used(name, given)
    values = {flag: flag_values[flag].value for flag in SETTINGS if flag in flag_values}
    defaults = mode.defaults(values)
    if mode.kind == "reads_run":
        # Where the trained run is: --work_dir, or the default a training run of
        # these flags would have used.
        flags_config = config_from_flags(flag_values,
                                         unless_given={**defaults, "mode": "train"})
        config = recorded_config(name, flag_values, flags_config, given)
        check_job_paths(name, config)
    else:
        config = config_from_flags(flag_values, unless_given=defaults)
        check_job_paths(name, config)
        if mode.kind == "trains":
            check_new_run(config, name)
    if uses(name, "weights"):
        check_pretrained_backbone(config, name)
    check_dataset(config.data, mode.data_splits)
    return name, config


def run_job(name, config, log=print):
    """Loads TensorFlow and Keras, locks the run directory, runs the mode's function."""
    import contextlib

    from absl import logging

    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's export chatter
    import keras

    from svf_tf.runs.cluster import entered_together
    from svf_tf.runs.lock import RunLock
    from svf_tf.runs.strategy import is_chief, run_strategy

    if config.run.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(config.run.mixed_precision)
    keras.utils.set_random_seed(config.run.seed)
    mode, options = MODES[name], {}
    if mode.splits and config.run.strategy == "multi_worker":
        options["strategy"] = run_strategy(config)
    writer = is_chief(options["strategy"]) if options else True
    # Training locks its directory in the trainer (svf_tf/runs/trainer.py); of a
    # multi-worker evaluation, only the chief locks and writes.
    lock = (contextlib.nullcontext() if mode.kind == "trains" or not writer
            else RunLock(config.run_dir, log=log))
    with entered_together(lock, options.get("strategy"), config.to_dict()):
        if mode.kind != "trains" and writer:  # training logs itself once it holds the lock
            log_job(config.run_dir, name)
        module, function = mode.function.split(":")
        result = getattr(importlib.import_module(module), function)(config, log, **options)
    print(f"\nwork directory: {config.run_dir}", file=sys.stderr)
    return result


def main(argv):
    """`main.py`: every option is a flag; the job is `--mode` (default demo)."""
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    # Until the training loop installs its own handlers (svf_tf/runs/interrupts.py),
    # SIGTERM exits like Ctrl-C: through `finally` and atexit, so the run's lock goes.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run_job(*resolve_job(FLAGS))
    except TrainingInterrupted as stop:
        print(stop.message(), file=sys.stderr)
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:
        print("interrupted before training started: no checkpoint was written.",
              file=sys.stderr)
        sys.exit(130)
    except _Terminated:
        print("terminated (SIGTERM) before training started: no checkpoint was written.",
              file=sys.stderr)
        sys.exit(143)


class _Terminated(BaseException):  # noqa: N818 (like KeyboardInterrupt)
    """SIGTERM outside the training loop."""


def _terminate(signum, frame):
    raise _Terminated()
