"""Running the comparison: one training run per (setting, seed), resumable, each in its directory.

Every run is a real training run through the shared loop
(`svf_tf.runs.trainer.run_training`) with `BaseClassTrackingTask`, which is
`FewShotTask` plus base-class scores in every epoch's record. Its directory
is `<out_dir>/<setting>/seed<seed>`, a run directory like any other (run.json,
lock, verified checkpoints; docs/run_directory.md), so:

- a rerun skips a finished run (its summary.json exists and its run.json is
  this experiment) and resumes a killed one from its newest checkpoint;
- a directory holding another experiment (other epochs, weights file, fold,
  ...) is refused in one line, never mixed in; so is an `<out_dir>` whose
  runs scored another number of base-class episodes (`comparison.json`,
  which records what the run identity does not).

Checkpoints are deleted once a run has finished (the numbers are in its
summary.json and history.json; a ResNet-50 checkpoint is about 100-300 MB and
the comparison has 30 runs) unless `keep_checkpoints` is set.
"""

import gc
import glob
import os
import shutil
import time

from svf_tf.config.modes import mode_settings
from svf_tf.finetune_comparison.results import run_record
from svf_tf.finetune_comparison.settings_table import run_config
from svf_tf.runs import identity
from svf_tf.runs.run_files import read_json, write_json

MANIFEST = "comparison.json"
MANIFEST_FORMAT = 1


def run_directory(out_dir, setting, seed):
    """Where the run of `setting` with `seed` lives."""
    return os.path.join(os.path.abspath(out_dir), setting.name, f"seed{seed}")


def check_manifest(out_dir, base_episodes):
    """Records, or checks, the options of `out_dir`'s runs that their run.json does not.

    Raises:
        ValueError: `out_dir` holds runs scored with another number of
            base-class episodes (one line, with the fix).
    """
    path = os.path.join(out_dir, MANIFEST)
    wanted = {"format": MANIFEST_FORMAT, "base_episodes": base_episodes}
    if os.path.isfile(path):
        recorded = read_json(path)
        if recorded.get("base_episodes") != base_episodes:
            raise ValueError(
                f"--out_dir={out_dir!r} holds runs scored on {recorded.get('base_episodes')} "
                f"base-class episodes per epoch, not {base_episodes}: rerun with "
                f"--base_episodes={recorded.get('base_episodes')} to resume them, or give "
                "another --out_dir.")
        return
    os.makedirs(out_dir, exist_ok=True)
    write_json(path, wanted)


def finished_summary(config):
    """The summary of `config`'s run if it has finished, else None.

    Raises:
        RunIdentityError: the directory's run is another experiment, or has
            a summary.json without a run.json.
    """
    run_dir = config.run_dir
    path = os.path.join(run_dir, "summary.json")
    if not os.path.isfile(path):
        return None
    record = identity.read_record(run_dir)
    if record is None:
        raise identity.RunIdentityError(
            f"{run_dir!r} has a summary.json but no run.json, so which experiment it holds "
            "is unknown; remove the directory to run it again.")
    current = identity.make_record(config, "train", mode_settings("train"))
    identity.check_resume(record, current, run_dir)
    return read_json(path)


def remove_checkpoints(run_dir):
    """Deletes a finished run's checkpoints (`latest/`, `best/ckpt-*`); keeps best.json."""
    shutil.rmtree(os.path.join(run_dir, "latest"), ignore_errors=True)
    best = os.path.join(run_dir, "best")
    for path in [*glob.glob(os.path.join(best, "ckpt-*")), os.path.join(best, "checkpoint")]:
        if os.path.exists(path):
            os.remove(path)


def run_comparison(settings, seeds, out_dir, values, *, strategy, base_episodes=100,
                   keep_checkpoints=False, log=print):
    """Trains (or reads back) every (setting, seed) run; returns their `run_record`s.

    Seeds are the outer loop, so a first complete pass over the settings is
    there early.

    Args:
        settings: `ComparedSetting`s (`settings_table.select_settings`).
        seeds: run seeds.
        out_dir: the comparison's directory.
        values: the settings every run shares, by flag name, over
            `settings_table.REDUCED` (backbone, fold, shot, epochs, weights, ...).
        strategy: a `tf.distribute.Strategy`.
        base_episodes: base-class episodes scored after every epoch.
        keep_checkpoints: keep each finished run's checkpoints.
        log: callable taking one line of text.

    Returns:
        A list of `run_record` dicts, each with "trained_now" (whether this
        call trained it) and "wall_seconds" (this call's time for it).
    """
    import keras

    from svf_tf.runs.trainer import run_training
    from svf_tf.tasks.base_class_tracking import BaseClassTrackingTask

    out_dir = os.path.abspath(out_dir)
    configs = [(setting, seed, run_config(setting, seed, run_directory(out_dir, setting, seed),
                                          **values))
               for seed in seeds for setting in settings]  # every config checked up front
    check_manifest(out_dir, base_episodes)
    records = []
    for number, (setting, seed, config) in enumerate(configs, 1):
        start = time.perf_counter()
        summary = finished_summary(config)
        where = f"[{number}/{len(configs)}] {setting.name} ({setting.label}), seed {seed}"
        trained = summary is None
        if not trained:
            log(f"{where}: finished before, read from {config.run_dir}")
        else:
            log(f"\n=== {where} ===")
            task = BaseClassTrackingTask(config, log, base_episodes=base_episodes)
            summary = run_training(task, strategy, log=log)
            del task  # its model, before the next run builds its own
            keras.backend.clear_session()
            gc.collect()
        if not keep_checkpoints:
            remove_checkpoints(config.run_dir)
        record = run_record(setting, seed, summary)
        record.update(trained_now=trained, wall_seconds=time.perf_counter() - start)
        records.append(record)
    return records
