"""Opening a training run's directory: the lock, the run's identity, flags.txt.

`open_run` is what the trainer does before it builds anything: take the
directory's lock (`RunLock`; only the chief of a multi-worker job does),
refuse a directory that holds another experiment (`identity.check_resume`)
or checkpoints without a run.json, remove what a killed save left behind,
and, for a new run, write run.json and flags.txt once. `RunDirectory.check_data`
then pins the data lists' fingerprints (the task knows its lists only once
the dataset is read).
"""

import dataclasses
import os

from svf_tf.config.experiment import SETTINGS
from svf_tf.config.flags import flagfile_lines
from svf_tf.config.modes import EXPERIMENT, MODES, mode_settings
from svf_tf.runs import identity
from svf_tf.runs.lock import RunLock
from svf_tf.runs.run_files import log_job, write_flags


@dataclasses.dataclass
class RunDirectory:
    """An opened run directory (see `open_run`)."""

    path: str
    record: dict
    writer: bool
    lock: RunLock | None
    #: This command's identity settings and file fingerprints (the workers of a
    #: multi-worker job compare them at start-up: `svf_tf.runs.cluster`).
    settings: dict = dataclasses.field(default_factory=dict)
    _cleanups: list = dataclasses.field(default_factory=list)

    def check_data(self, fingerprints):
        """Refuses other data than the run's; records the fingerprints the first time."""
        if not fingerprints:
            return
        updated = identity.check_data(self.record, fingerprints, self.path)
        if updated is not None:
            self.record["fingerprints"] = updated
            if self.writer:
                identity.write_record(self.path, self.record)

    def on_close(self, cleanup):
        """Runs `cleanup()` when the run is closed (a worker's temporary files)."""
        self._cleanups.append(cleanup)

    def close(self):
        while self._cleanups:
            self._cleanups.pop()()
        if self.lock is not None:
            self.lock.release()


def open_run(config, mode, *, writer=True, log=print):
    """Opens `config.run_dir` for training by `mode` ("train", "train_base").

    Args:
        config: the run's `ExperimentConfig`.
        mode: the training mode; its settings (`svf_tf.config.modes`) are recorded.
        writer: this process writes the directory (False on non-chief workers:
            no lock, nothing written, the checks still run).
        log: callable taking one line of text.

    Returns:
        A `RunDirectory`; `close()` releases the lock.

    Raises:
        RunLockedError: another live job holds the directory.
        RunIdentityError: the directory holds another experiment.
    """
    path = config.run_dir
    lock = None
    if writer:
        os.makedirs(path, exist_ok=True)
        lock = RunLock(path, log=log)
        lock.acquire()
    try:
        if mode in MODES:
            config = dataclasses.replace(config, run=dataclasses.replace(
                config.run, mode=mode, work_dir=path))
            names = mode_settings(mode)
        else:  # a task of the user's own: every setting of the experiment's groups
            config = dataclasses.replace(config, run=dataclasses.replace(config.run,
                                                                          work_dir=path))
            names = [name for name, spec in SETTINGS.items() if spec.group in EXPERIMENT]
        current = identity.make_record(config, mode, names)
        record = identity.read_record(path)
        if record is not None and not identity.has_checkpoints(path):
            record = None  # a run that saved nothing (it failed early): start it afresh
        if record is not None:
            identity.check_resume(record, current, path)
        elif identity.has_checkpoints(path):
            raise identity.RunIdentityError(
                f"{path!r} holds checkpoints but no run.json saying which experiment wrote "
                "them (an older svf-tf, or files copied in); move them away or use another "
                "--work_dir.")
        else:
            record = current
            if writer:
                identity.write_record(path, record)
                write_flags(os.path.join(path, "flags.txt"),
                            "\n".join(flagfile_lines(config, names)) + "\n")
        if writer:
            log_job(path, mode)
        settings = {"identity": {name: current["settings"].get(name)
                                 for name in current["identity"]},
                    "fingerprints": current["fingerprints"]}
        return RunDirectory(path, record, writer, lock, settings)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
