"""Files every run writes into its work directory: run.json, flags.txt, JSON summaries.

Each is written whole or not at all (`svf_tf.atomic_files`): a killed run,
or a full disk, leaves the previous version.
"""

import datetime
import json
import os
import shlex
import socket
import sys

from svf_tf.atomic_files import write_file_atomically


def write_json(path, data):
    """Writes `data` as indented JSON, atomically."""
    write_file_atomically(path, json.dumps(data, indent=2, default=str))


def read_json(path):
    """The JSON content of `path`; a damaged file is a one-line ValueError naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as error:
        raise ValueError(f"{path!r} is not valid JSON ({error}); restore it or remove "
                         "it.") from None


def write_flags(path, text):
    """Writes flags.txt: the run's settings as a flagfile that reproduces it.

    Written once, by the training run that creates the directory
    (`svf_tf.runs.run_directory.open_run`): the settings its mode read, with
    per-method defaults resolved.
    """
    write_file_atomically(path, text)


def log_job(run_dir, mode):
    """Appends this command to `<run_dir>/jobs.log`: every job that ran in the directory.

    One line (time, mode, pid, host, command), appended while the job holds
    the directory's lock.
    """
    time = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    line = (f"{time} --mode={mode} pid={os.getpid()} host={socket.gethostname()}: "
            f"{shlex.join([os.path.basename(sys.executable), *sys.argv])}\n")
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "jobs.log"), "a") as f:
        f.write(line)
