"""Training checkpoints: resumable state, plus the best model kept apart.

A checkpoint holds every variable of the model (weights, BatchNorm
statistics, SVF factors and the dropout RNG states), every variable of the
optimizer (iteration count, momentum buffers), the global step, the epoch and
the position inside it (the data pipeline is a function of (seed, epoch,
episode index), so that is all the data state).

The variables are saved as lists in graph order, not through the model
object: `tf.train.Checkpoint(model=...)` follows TensorFlow's object graph,
which misses Keras 3 `SeedGenerator` states and the weights of some
sublayers of custom layers (the dilated branches of our ASPP were silently
left at their initial values on restore). Lists are complete by
construction, and a model with another architecture fails to restore
instead of restoring in part.

`latest/` keeps the last few checkpoints (resume); `best/` keeps the one
with the best validation mIoU, next to its SVF adapter file, and
`best/best.json` says which checkpoint that is (it is the source of truth).

A checkpoint is either whole or absent. It is written into a staging
directory (`latest/.staging-ckpt-<step>/`), read back in full (TensorFlow
checks every tensor's CRC32C on read; the key set must be complete and every
floating value finite), and only then published: the data files are moved
next to the others first and the `.index` last (a checkpoint exists for
readers once its index does), then the `checkpoint` state file is updated so
`tf.train.latest_checkpoint` keeps working. A failed save removes its staging
directory and never touches a published checkpoint; `clean_staging` removes
what a killed save left behind.

On resume a checkpoint that cannot be read is reported, renamed
`damaged-ckpt-<step>.*` (kept for inspection, out of the way of later saves)
and the previous one is used. Every tensor is read before anything is
assigned, so a damaged file never restores a model in part.
"""

import errno
import glob
import json
import os
import re
import shutil

import numpy as np
import tensorflow as tf

from svf_tf.runs.run_files import write_json

_NAME = "ckpt-{}"
_STAGING = ".staging-"
_DAMAGED = "damaged-"
_VALUE_KEY = "/.ATTRIBUTES/VARIABLE_VALUE"


class TrainingCheckpoint:
    """Saves and restores the full training state.

    Args:
        directory: the run's work directory (checkpoints go to `latest/` and
            `best/` under it).
        model: the Keras model.
        optimizer: the optimizer (None for evaluation only).
        max_to_keep: how many recent checkpoints `latest/` keeps (None: all).
        value_limit: if given, a checkpoint holding a floating value with
            |v| > value_limit is refused like a non-finite one (a diverged
            update whose loss is still finite).
        log: callable taking one line (resume fallbacks are reported there).
    """

    def __init__(self, directory, model, optimizer=None, max_to_keep=2, value_limit=None,
                 log=print):
        self.directory = directory
        self.latest_dir = os.path.join(directory, "latest")
        self.best_dir = os.path.join(directory, "best")
        self.best_record = os.path.join(self.best_dir, "best.json")
        self.max_to_keep = max_to_keep
        self.value_limit = value_limit
        self.log = log
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name="step_in_epoch")
        # Graph order: the same for every build of an architecture (names are not:
        # Keras numbers layers and seed generators with process-wide counters).
        self._objects = {"model_variables": list(model.variables), "step": self.step,
                         "epoch": self.epoch, "step_in_epoch": self.step_in_epoch}
        if optimizer is not None:
            self._objects["optimizer_variables"] = list(optimizer.variables)
        self.checkpoint = tf.train.Checkpoint(**self._objects)

    # Where things are.

    @property
    def latest_path(self):
        """The newest checkpoint in `latest/` (a prefix, `.../ckpt-<step>`), or None."""
        published = _published(self.latest_dir)
        return published[0] if published else None

    @property
    def best_path(self):
        """The best checkpoint named by `best/best.json`, or None before the first one."""
        record = self._best_record()
        if record is None:
            return None
        return os.path.join(self.best_dir, os.path.basename(record["checkpoint"]))

    def best_miou(self):
        """The validation mIoU of the best checkpoint, or None before the first one."""
        record = self._best_record()
        return None if record is None else record["miou"]

    @staticmethod
    def read_best_miou(run_dir):
        """The best validation mIoU recorded in `run_dir` (None before the first one)."""
        record = _read_record(os.path.join(run_dir, "best", "best.json"))
        return None if record is None else record["miou"]

    # Restore.

    def restore_latest(self):
        """Restores the newest intact checkpoint of `latest/`; returns its path or None.

        A checkpoint that cannot be read is reported through `log`, renamed
        `damaged-...` and the next older one is tried.

        Raises:
            ValueError: checkpoints exist but none can be read, or they were
                written by another model.
        """
        candidates = _published(self.latest_dir)
        failures = []
        for prefix in candidates:
            try:
                self._check(prefix)
            except _UnusableError as problem:
                failures.append((prefix, problem))
                continue
            except _MismatchError as problem:
                raise ValueError(self._mismatch_message(prefix, problem)) from None
            self._assign(prefix)
            for bad, problem in failures:
                note = _set_aside(bad)
                self.log(f"checkpoint {bad} cannot be read ({problem}); resuming from {prefix} "
                         f"instead{note}")
            if failures:  # best effort, as setting aside: the next save writes it anyway
                try:
                    self._write_state(self.latest_dir,
                                      _published(self.latest_dir)[:self.max_to_keep])
                except OSError:
                    pass
            return prefix
        if failures:
            details = "; ".join(f"{bad}: {problem}" for bad, problem in failures)
            raise ValueError(
                f"none of the checkpoints in {self.latest_dir} can be read ({details}); move "
                f"{self.latest_dir} away to start over, or restore a backup")
        return None

    def restore(self, path):
        """Restores model weights (and whatever else matches) from `path`.

        Args:
            path: a checkpoint prefix (".../ckpt-12") or a directory holding
                one (`best/` means the checkpoint its best.json names).

        Raises:
            FileNotFoundError: no checkpoint at `path`.
            ValueError: the checkpoint is damaged, or does not match the model.
        """
        if os.path.isdir(path):
            path = self._checkpoint_in(path) or path
        if not tf.io.gfile.exists(path + ".index"):
            raise FileNotFoundError(
                f"No checkpoint at {path!r}: give a checkpoint prefix (…/ckpt-12) or a "
                "directory holding one (e.g. <work_dir>/best).")
        try:
            self._check(path)
        except _NotFiniteError as problem:
            raise ValueError(
                f"checkpoint {path} cannot be used ({problem}); use another checkpoint (e.g. "
                f"{self.latest_dir}) or retrain") from None
        except _UnusableError as problem:
            raise ValueError(
                f"checkpoint {path} is damaged ({problem}): it cannot be read; use another "
                f"checkpoint (e.g. {self.latest_dir}) or retrain") from None
        except _MismatchError as problem:
            raise ValueError(self._mismatch_message(path, problem)) from None
        self._assign(path)
        return path

    # Save.

    def save(self, epoch, step_in_epoch):
        """Writes, verifies and publishes a checkpoint into `latest/`; returns its path.

        Raises:
            OSError: the file system refused (disk full, read-only, permission);
                nothing was published.
            FloatingPointError: a variable is not finite (or over `value_limit`);
                nothing was saved.
        """
        self.epoch.assign(epoch)
        self.step_in_epoch.assign(step_in_epoch)
        name = _NAME.format(int(self.step.numpy()))
        staged = self._stage(self.latest_dir, name)
        try:
            path = _publish(staged, self.latest_dir)
            published = _published(self.latest_dir)
            keep = len(published) if self.max_to_keep is None else self.max_to_keep
            kept = [path] + [p for p in published if p != path][:keep - 1]
            self._write_state(self.latest_dir, kept)
            for old in published:
                if old not in kept:
                    _remove(old)
        except (OSError, tf.errors.OpError) as error:
            raise _save_error(os.path.join(self.latest_dir, name), self.directory, error) from None
        finally:
            shutil.rmtree(os.path.dirname(staged), ignore_errors=True)
        return path

    def save_best(self, miou, epoch, extra=None):
        """Saves the current state as the best one, with a small JSON record.

        The previous best is replaced only once the new one is verified and
        published, and `best.json` (written atomically after that) names it.

        Raises:
            OSError, FloatingPointError: as `save`; the previous best is kept.
        """
        name = _NAME.format(int(self.step.numpy()))
        staged = self._stage(self.best_dir, name)
        try:
            path = _publish(staged, self.best_dir)
            self._write_state(self.best_dir, [path])
            record = {"miou": float(miou), "epoch": int(epoch), "step": int(self.step.numpy()),
                      "checkpoint": path, **(extra or {})}
            write_json(self.best_record, record)
            for old in _published(self.best_dir):
                if old != path:
                    _remove(old)
        except (OSError, tf.errors.OpError) as error:
            raise _save_error(os.path.join(self.best_dir, name), self.directory, error) from None
        finally:
            shutil.rmtree(os.path.dirname(staged), ignore_errors=True)
        return path

    def clean_staging(self):
        """Removes what a killed save left (staging dirs, TF's `*_temp*`); returns the paths.

        Call it holding the run's lock (another job's save in progress looks
        just the same).
        """
        removed = []
        for directory in (self.latest_dir, self.best_dir):
            for pattern in (_STAGING + "*", "*_temp*", "checkpoint.tmp*", "best.json.tmp"):
                for path in glob.glob(os.path.join(glob.escape(directory), pattern)):
                    try:
                        if os.path.isdir(path):
                            shutil.rmtree(path)
                        else:
                            os.remove(path)
                    except OSError as error:
                        raise CheckpointFileError(
                            error.errno, f"could not remove the unfinished checkpoint file "
                            f"{path}: {error.strerror}; remove it by hand", path) from None
                    removed.append(path)
        return removed

    # Internals.

    def _stage(self, directory, name):
        """Writes and verifies a checkpoint in a staging dir; returns its prefix there."""
        staging = os.path.join(directory, _STAGING + name)
        target = os.path.join(directory, name)
        try:
            shutil.rmtree(staging, ignore_errors=True)
            os.makedirs(staging)
            prefix = self.checkpoint.write(os.path.join(staging, name))
            self._check(prefix, self.value_limit)
            for file in _files(prefix):
                _fsync(file)
        except _NotFiniteError as problem:
            shutil.rmtree(staging, ignore_errors=True)
            raise FloatingPointError(
                f"{problem}; checkpoint {target} was not saved (nothing was written), the "
                f"newest saved checkpoint is still {self.latest_path or 'none'}") from None
        except (_UnusableError, _MismatchError) as problem:
            shutil.rmtree(staging, ignore_errors=True)
            raise _save_error(target, self.directory, OSError(
                errno.EIO, f"it did not read back intact ({problem})")) from None
        except (OSError, tf.errors.OpError) as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise _save_error(target, self.directory, error) from None
        return prefix

    def _check(self, prefix, value_limit=None):
        """Reads every tensor of `prefix` and checks it against this model.

        Raises:
            _MismatchError: the key set, a shape or a dtype differs from this model's.
            _UnusableError: a file cannot be read (checksum, truncation, missing data
                file) or a floating value is not finite (`_NotFiniteError`).
        """
        try:
            reader = tf.train.load_checkpoint(prefix)
            shapes = reader.get_variable_to_shape_map()
            dtypes = reader.get_variable_to_dtype_map()
        except (tf.errors.OpError, IndexError, ValueError) as error:
            raise _UnusableError(_first_line(error)) from None
        keys = self._expected_keys(shapes)
        for key, (label, variable) in keys.items():
            if key not in shapes:
                raise _MismatchError(f"the checkpoint has no {label}")
            if list(shapes[key]) != list(variable.shape) or dtypes[key] != tf.as_dtype(
                    variable.dtype):
                raise _MismatchError(
                    f"{label} is {dtypes[key].name}{list(shapes[key])} in the checkpoint, "
                    f"{tf.as_dtype(variable.dtype).name}{list(variable.shape)} here")
        for key in [*keys, *sorted(set(shapes) - set(keys))]:
            try:
                value = reader.get_tensor(key)
            except (tf.errors.OpError, IndexError, ValueError) as error:
                raise _UnusableError(_first_line(error)) from None
            if dtypes[key].is_floating and np.size(value):
                label = keys[key][0] if key in keys else key
                value = np.asarray(value)
                if value.dtype.kind != "f":  # bfloat16
                    value = value.astype(np.float32)
                if not np.isfinite(value).all():
                    bad = value[~np.isfinite(value)].flat[0]
                    raise _NotFiniteError(f"{label} holds non-finite values ({bad})")
                largest = float(np.max(np.abs(value)))
                if value_limit is not None and largest > value_limit:
                    raise _NotFiniteError(
                        f"{label} holds |v| = {largest:.3g}, over the limit {value_limit:g}")

    def _expected_keys(self, shapes):
        """{checkpoint key: (label, variable)} for this model; raises _MismatchError on counts."""
        keys = {}
        for name, value in self._objects.items():
            if isinstance(value, list):
                kind = name.replace("_variables", "")
                pattern = re.compile(re.escape(name) + r"/(\d+)/")
                stored = {int(m.group(1)) for key in shapes if (m := pattern.match(key))}
                if len(stored) != len(value):
                    raise _MismatchError(
                        f"the checkpoint has {len(stored)} {kind} variables, this model "
                        f"{len(value)}")
                for index, variable in enumerate(value):
                    label = f"{kind} variable {index} ({getattr(variable, 'path', variable.name)})"
                    keys[f"{name}/{index}{_VALUE_KEY}"] = (label, variable)
            else:
                keys[f"{name}{_VALUE_KEY}"] = (name, value)
        return keys

    def _assign(self, prefix):
        """Assigns a checkpoint that `_check` has read in full."""
        try:
            self.checkpoint.read(prefix).expect_partial().assert_existing_objects_matched()
        except (tf.errors.OpError, IndexError) as error:  # changed since it was checked
            raise ValueError(
                f"checkpoint {prefix} is damaged ({_first_line(error)}): it cannot be read; "
                f"use another checkpoint (e.g. {self.latest_dir}) or retrain") from None
        except (AssertionError, ValueError) as error:
            raise ValueError(self._mismatch_message(prefix, _first_line(error))) from None

    def _mismatch_message(self, path, problem):
        return (f"Checkpoint {path!r} does not match this model ({problem}); use the same "
                "--method, --backbone, --shot and fine-tuning flags as the run that wrote it "
                "(its flags.txt lists them).")

    def _checkpoint_in(self, directory):
        """The checkpoint a directory stands for: best.json's, the state file's or the newest."""
        record = _read_record(os.path.join(directory, "best.json"))
        if record is not None:
            return os.path.join(directory, os.path.basename(record["checkpoint"]))
        published = _published(directory)
        return tf.train.latest_checkpoint(directory) or (published[0] if published else None)

    def _best_record(self):
        return _read_record(self.best_record)

    @staticmethod
    def _write_state(directory, newest_first):
        """Writes the `checkpoint` state file that `tf.train.latest_checkpoint` reads.

        The text form of TensorFlow's `CheckpointState` with names relative
        to `directory`, oldest first, as `tf.train.CheckpointManager` writes
        it (TensorFlow's own writer, `update_checkpoint_state`, is deprecated
        and logs a warning on every call); atomic like TensorFlow's.
        """
        names = [os.path.basename(p) for p in reversed(newest_first)]
        if not names:
            return
        text = f'model_checkpoint_path: "{names[-1]}"\n' + "".join(
            f'all_model_checkpoint_paths: "{name}"\n' for name in names)
        state = os.path.join(directory, "checkpoint")
        with open(state + ".tmp", "w") as f:
            f.write(text)
        os.replace(state + ".tmp", state)


class _UnusableError(Exception):
    """A checkpoint that cannot be read or used (its str is the reason)."""


class _NotFiniteError(_UnusableError):
    """A checkpoint holding a non-finite (or over-limit) floating value."""


class _MismatchError(Exception):
    """A readable checkpoint of another model (its str is the first difference)."""


def _read_record(path):
    """A best.json record, or None if there is none."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        record["miou"], record["checkpoint"]  # noqa: B018 (the keys every record has)
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise ValueError(f"{path} cannot be read ({_first_line(error)}); restore it from a "
                         "backup, or delete it (the next validation picks a new best)") from None
    return record


def newest_checkpoint(directory):
    """The newest published checkpoint prefix of `directory` (highest step), or None."""
    published = _published(directory)
    return published[0] if published else None


def _published(directory):
    """Published checkpoint prefixes of `directory`, newest (highest step) first."""
    found = []
    for index in glob.glob(os.path.join(glob.escape(directory), "ckpt-*.index")):
        match = re.fullmatch(r"ckpt-(\d+)\.index", os.path.basename(index))
        if match:
            found.append((int(match.group(1)), index[:-len(".index")]))
    return [prefix for _, prefix in sorted(found, reverse=True)]


def _files(prefix):
    """A checkpoint's files, data files first and the index last."""
    return sorted(glob.glob(glob.escape(prefix) + ".data-*")) + [prefix + ".index"]


def _publish(staged, directory):
    """Moves a staged checkpoint into `directory`, index last; returns its new prefix."""
    prefix = os.path.join(directory, os.path.basename(staged))
    for file in _files(staged):
        os.replace(file, os.path.join(directory, os.path.basename(file)))
    _fsync(directory)
    return prefix


def _remove(prefix):
    """Deletes a checkpoint, index first (it stops being a checkpoint at once)."""
    for file in reversed(_files(prefix)):
        if os.path.exists(file):
            os.remove(file)


def _set_aside(prefix):
    """Renames a damaged checkpoint `damaged-...`; returns a note for the log line."""
    directory, name = os.path.split(prefix)
    try:
        for file in reversed(_files(prefix)):
            if os.path.exists(file):
                os.replace(file, os.path.join(directory, _DAMAGED + os.path.basename(file)))
    except OSError:
        return ""
    return f" (its files are kept as {os.path.join(directory, _DAMAGED + name)}.*)"


def _fsync(path):
    """Flushes a file or directory to disk (a published checkpoint survives a power cut)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory
    finally:
        os.close(fd)


def _first_line(error):
    """The reason of an error in one line, without TensorFlow's op decorations."""
    text = str(error).strip() or type(error).__name__
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", text.splitlines()[0])
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    if isinstance(error, IndexError):  # TensorFlow's words for a short read
        text += " (a data file is truncated)"
    return text


_FIXES = {
    errno.ENOSPC: "free disk space for {run_dir}, or use another --work_dir",
    errno.EDQUOT: "free space within your disk quota, or use another --work_dir",
    errno.EFBIG: "raise the file-size limit (ulimit -f), or use another --work_dir",
    errno.EROFS: "{run_dir} is on a read-only file system: use another --work_dir",
    errno.EACCES: "make {run_dir} writable, or use another --work_dir",
    errno.EPERM: "make {run_dir} writable, or use another --work_dir",
    errno.ENOTDIR: "move the file that is in the way, or use another --work_dir",
    errno.EEXIST: "move the file that is in the way, or use another --work_dir",
}


def _save_error(path, run_dir, error):
    """A one-line `OSError` for a save that failed on the file system."""
    code, reason = getattr(error, "errno", None), getattr(error, "strerror", None)
    if code is None:  # TensorFlow's errors carry the cause as text only
        text = _first_line(error)
        code = next((c for c in (*_FIXES, errno.EIO) if os.strerror(c) in text), None)
        reason = os.strerror(code) if code else text
    filename = getattr(error, "filename", None)
    if filename:
        reason = f"{reason} ({filename})"
    fix = _FIXES.get(code, "check the disk of {run_dir}, or use another --work_dir")
    return CheckpointFileError(
        code, f"could not save checkpoint {path}: {reason}; {fix.format(run_dir=run_dir)} "
              "(earlier checkpoints are intact)", filename)


class CheckpointFileError(OSError):
    """A checkpoint file operation that failed; `errno` and `filename` are the cause's.

    Its message is one line (OSError's own adds "[Errno n]" and the file name).
    """

    def __str__(self):
        return self.strerror
