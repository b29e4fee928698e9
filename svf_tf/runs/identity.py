"""Run identity: what defines an experiment, recorded in its run directory as run.json.

A training run (`--mode=train`, `--mode=train_base`, each run of the demo)
writes `run.json` when it creates its work directory, before anything else:

    {"format": 1, "mode": "train", "created": "2026-12-01T19:55:00+00:00",
     "settings": {"fold": "0", "shot": "1", "weights": "/w/resnet50_v2.weights.h5", ...},
     "identity": ["dataset", "synthetic", "fold", "shot", ...],
     "fingerprints": {"weights": "sha256:...", "train_list": "sha256:...", ...}}

`settings` holds every setting the mode read, as flag text; `identity` names
those that define the experiment: every one except `NOT_IDENTITY` (where
files are, how the job is executed, the divergence guard). What a path
names is pinned by content instead: the sha256 of the `--weights` and
`--base_learner` files, and of the training and validation lists (paths
relative to the dataset root, so a moved dataset is the same data).

Rerunning training in the directory with the same identity resumes it; with
another identity it is refused in one line naming the first setting that
differs (`check_resume`). eval, export and predict rebuild the model from the
recorded settings (`settings_for_job`): only `NOT_IDENTITY` settings and the
evaluation settings of `EVAL_OVERRIDES` may be given on their command line;
an identity setting given with another value is refused.
"""

import datetime
import hashlib
import json
import os

from svf_tf.config.experiment import SETTINGS, ExperimentConfig

IDENTITY_FILE = "run.json"
FORMAT = 1

#: Settings that do not define the experiment: where its files are (their
#: content is fingerprinted), how the job runs, and the divergence guard.
NOT_IDENTITY = frozenset({
    "mode", "work_dir", "strategy", "worker_timeout", "jit_compile", "data_root", "train_list",
    "val_list", "cache_dir", "episodes_dir", "weights", "base_learner", "weight_limit"})
#: Settings whose file content is part of the identity (sha256).
FILE_SETTINGS = ("weights", "base_learner")
#: Identity settings eval/export/predict may still change: the evaluation protocol.
EVAL_OVERRIDES = frozenset({"test_episodes", "eval_seeds", "test_size"})


class RunIdentityError(ValueError):
    """The run directory holds another experiment, or the command conflicts with it."""


_FILE_FIXES = {
    "weights": "give an existing weights file (e.g. converted by "
               "scripts/convert_torch_checkpoint.py), 'imagenet', or nothing for random weights",
    "base_learner": "give the base_learner.weights.h5 that --mode=train_base wrote into its "
                    "run's best/, or one scripts/convert_torch_checkpoint.py --target=pspnet "
                    "made",
}


def file_fingerprint(path, name="weights"):
    """"sha256:<hex>" of a file's bytes (None for unset; "imagenet" stays as it is).

    Raises:
        FileNotFoundError: one line naming the setting `--name` and the path.
    """
    if path is None or path == "imagenet":
        return path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--{name}={path!r}: no such file; {_FILE_FIXES[name]}.")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def list_fingerprint(items, root):
    """"sha256:<hex>" of a dataset list: its (image, label) paths relative to `root`, in order."""
    digest = hashlib.sha256()
    for pair in items:
        line = " ".join(os.path.relpath(path, root) if root else path for path in pair)
        digest.update(line.encode() + b"\n")
    return "sha256:" + digest.hexdigest()


def setting_text(name, value):
    """A setting's value as flag text (None: unset)."""
    return None if value is None else SETTINGS[name].setting.to_text(value)


def make_record(config, mode, names):
    """The run.json record of a new run of `config` by `mode`, reading settings `names`."""
    values = config.settings()
    settings = {name: setting_text(name, values[name]) for name in names}
    settings["work_dir"] = config.run_dir
    return {
        "format": FORMAT,
        "mode": mode,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "identity": [name for name in names if name not in NOT_IDENTITY],
        "fingerprints": {name: file_fingerprint(values[name], name) for name in FILE_SETTINGS
                         if name in names},
    }


def record_path(run_dir):
    return os.path.join(run_dir, IDENTITY_FILE)


def read_record(run_dir):
    """The run.json of `run_dir`, or None when there is none.

    Raises:
        RunIdentityError: the file exists but cannot be read as a record.
    """
    path = record_path(run_dir)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        if record.get("format") != FORMAT or not isinstance(record.get("settings"), dict):
            raise ValueError(f"format {record.get('format')!r}")
    except (OSError, ValueError, AttributeError) as error:
        raise RunIdentityError(
            f"{path!r} cannot be read ({error}); it records which experiment the run "
            "directory holds: restore it, or use another --work_dir.") from None
    return record


def write_record(run_dir, record):
    """Writes run.json atomically (a killed run leaves the old file or the new one)."""
    from svf_tf.runs.run_files import write_json

    write_json(record_path(run_dir), record)


def _show(value):
    return "unset" if value is None else repr(value)


def check_resume(record, current, run_dir):
    """Raises `RunIdentityError` unless `current` (a new record) is the experiment of `record`.

    Compares the recorded identity settings and file fingerprints; the
    message names the first difference, both values, and what to do.
    """
    if record["mode"] != current["mode"]:
        differences = [f"it was written by --mode={record['mode']}, this is "
                       f"--mode={current['mode']}"]
    else:
        differences = [
            f"--{name} was {_show(record['settings'].get(name))} there, "
            f"{_show(current['settings'].get(name))} here"
            for name in current["identity"]
            if record["settings"].get(name) != current["settings"].get(name)]
        for name, fingerprint in current["fingerprints"].items():
            recorded = record.get("fingerprints", {}).get(name)
            if recorded != fingerprint:
                differences.append(
                    f"the --{name} file differs ({_short(recorded)} there, "
                    f"{_short(fingerprint)} here)")
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise RunIdentityError(
            f"--work_dir={run_dir!r} holds another experiment: {differences[0]}{more}. "
            "Rerun with its settings to resume it (they are in its flags.txt), or start a new "
            "run with another --work_dir.")


def has_checkpoints(run_dir):
    """Whether `run_dir` holds any checkpoint (a run without one has no results to protect)."""
    return any(name.startswith("ckpt-") or name.startswith("damaged-")
               for sub in ("latest", "best") if os.path.isdir(os.path.join(run_dir, sub))
               for name in os.listdir(os.path.join(run_dir, sub)))


def check_data(record, fingerprints, run_dir):
    """Raises `RunIdentityError` if the data lists differ from the recorded ones.

    Returns:
        The fingerprints to record (None when the record already holds them).
    """
    recorded = record.get("fingerprints", {})
    for name, fingerprint in fingerprints.items():
        if name in recorded and recorded[name] != fingerprint:
            split = name.replace("_list", "")
            raise RunIdentityError(
                f"The {split} list is not the one the run in {run_dir!r} was trained on "
                f"({_short(recorded[name])} there, {_short(fingerprint)} here: other images, "
                "or another dataset); resume it on the same data, or start a new run with "
                "another --work_dir.")
    if all(name in recorded for name in fingerprints):
        return None
    return {**recorded, **fingerprints}


def _short(fingerprint):
    if fingerprint is None:
        return "none"
    return fingerprint[:len("sha256:") + 12] if fingerprint.startswith("sha256:") \
        else repr(fingerprint)


def settings_for_job(record, given, run_dir, mode):
    """{flag: value} of an eval/export/predict job on the run of `record`.

    Args:
        record: the run's run.json record.
        given: {flag: value} of the settings given on the command line (or a
            flagfile) that the job reads.
        run_dir: the run directory (for messages).
        mode: the job's mode (for messages).

    Returns:
        The recorded settings (parsed) overlaid with the given ones.

    Raises:
        RunIdentityError: a given identity setting differs from the recorded value.
    """
    identity = set(record["identity"]) - EVAL_OVERRIDES
    values = {}
    for name, text in record["settings"].items():
        if name not in SETTINGS or name == "work_dir":
            continue
        setting = SETTINGS[name].setting
        values[name] = None if text is None else setting.validate(
            setting.parse_text(text, f"--{name}"), f"--{name}")
    for name, value in given.items():
        if name in identity and setting_text(name, value) != record["settings"].get(name):
            raise RunIdentityError(
                f"--{name}={setting_text(name, value)} conflicts with the run in {run_dir!r}, "
                f"trained with --{name}={record['settings'].get(name)}; --mode={mode} takes the "
                "experiment's settings from the run directory: drop the flag, or point "
                "--work_dir at the run you mean.")
        values[name] = value
    return values


def find_run_dir(path):
    """The run directory holding checkpoint `path` (`<run>/best/ckpt-3`), or None."""
    directory = os.path.abspath(path)
    for _ in range(3):
        directory = os.path.dirname(directory)
        if os.path.isfile(record_path(directory)):
            return directory
    return None


def runs_inside(run_dir):
    """Subdirectories of `run_dir` that hold a run (the demo's freeze/ and svf/)."""
    if not os.path.isdir(run_dir):
        return []
    return sorted(os.path.join(run_dir, name) for name in os.listdir(run_dir)
                  if os.path.isfile(record_path(os.path.join(run_dir, name))))


def config_from_record(record, given, run_dir, mode):
    """The `ExperimentConfig` of an eval/export/predict job on a recorded run."""
    values = settings_for_job(record, given, run_dir, mode)
    values.update({"mode": mode, "work_dir": run_dir})
    return ExperimentConfig.from_settings(**values)
