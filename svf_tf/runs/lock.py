"""A lock on a run directory: one job at a time writes into it.

The lock is the file `<run_dir>/run.lock`, created with
`O_CREAT | O_EXCL` (atomic on local file systems and on NFS v3 and later, so
it also works for jobs on several machines sharing a work directory). It
holds who holds it, as JSON: pid, host, start time and command line, which
is what the refusal tells the user.

A lock left by a job that died without releasing it (kill -9, a power cut)
is stale. On the holder's own host that is decidable (its pid is not
running) and the lock is taken over with a warning; a lock from another host
is never taken over, since its job may be running there (the user deletes
`run.lock` by hand if it is not). A lock file that cannot be parsed is
another job creating it right now, or one that crashed while doing so: it
counts as held for a minute, stale after that.

TensorFlow-free, so any job (training, a script writing into a run) can
take the lock first thing.
"""

import atexit
import datetime
import errno
import json
import os
import socket
import sys
import time
import uuid

LOCK_FILE = "run.lock"
UNREADABLE_GRACE_SECONDS = 60


class RunLockedError(ValueError):
    """The run directory is in use by another job (the message names it)."""


class RunLock:
    """The lock on one run directory; also a context manager.

    Args:
        run_dir: the run's work directory (created if missing).
        log: callable taking one line (the stale-lock warning goes there).
    """

    def __init__(self, run_dir, log=print):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_FILE)
        self.log = log
        self._record = None

    @property
    def held(self):
        """Whether this object holds the lock."""
        return self._record is not None

    def acquire(self):
        """Takes the lock (a no-op if this object holds it already); returns self.

        Raises:
            RunLockedError: another live job holds it (or may: another host,
                a lock file being written).
            OSError: the lock file cannot be created (one line naming the path).
        """
        if self._record is not None:
            return self
        try:
            os.makedirs(self.run_dir, exist_ok=True)
        except OSError as error:
            raise _lock_error(self.run_dir, error) from None
        for _ in range(5):  # each pass either takes the lock or sees it change hands
            if self._create():
                atexit.register(self.release)
                return self
            raw, holder, age = self._read()
            if raw is None:  # released in the meantime
                continue
            stale = _stale_reason(holder, age)
            if stale is None:
                raise RunLockedError(self._refusal(holder, age))
            if self._take_away(raw):
                self.log(f"took over the stale lock of {stale}: {self.path}")
        raise RunLockedError(
            f"{self.run_dir} is in use: its lock {self.path} keeps changing hands; wait for the "
            "other jobs to finish, or use another --work_dir")

    def release(self):
        """Removes the lock file if it is still ours; safe to call more than once."""
        record, self._record = self._record, None
        if record is None:
            return
        atexit.unregister(self.release)
        if record["pid"] != os.getpid():  # a forked child: the lock is its parent's
            return
        _, holder, _ = self._read()
        if holder and all(holder.get(key) == record[key] for key in ("pid", "host", "started")):
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()

    def _create(self):
        """Creates the lock file with our record; False if it exists."""
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "command": " ".join(sys.argv)}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as error:
            raise _lock_error(self.run_dir, error) from None
        try:
            try:
                os.write(fd, json.dumps(record).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as error:
            os.remove(self.path)
            raise _lock_error(self.run_dir, error) from None
        self._record = record
        return True

    def _read(self):
        """(raw bytes, parsed record or None, age in seconds); raw is None if there is no file."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return None, None, 0.0
        try:
            holder = json.loads(raw)
            if not (isinstance(holder, dict) and isinstance(holder.get("pid"), int)
                    and holder["pid"] > 0 and isinstance(holder.get("host"), str)):
                holder = None
        except ValueError:
            holder = None
        return raw, holder, age

    def _take_away(self, raw):
        """Removes a stale lock file if it still holds `raw`; True if it did.

        The file is renamed to a name of our own first and compared: of two
        jobs taking over the same stale lock, the slower must not remove the
        faster one's fresh lock (it puts it back instead).
        """
        aside = f"{self.path}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        with open(aside, "rb") as f:
            same = f.read() == raw
        if not same:
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            except OSError:  # no hard links here: put it back as it was
                os.replace(aside, self.path)
                return False
        os.remove(aside)
        return same

    def _refusal(self, holder, age):
        if holder is None:
            return (f"{self.run_dir} is in use: its lock {self.path} is being written by another "
                    f"job ({age:.0f} s ago); wait for it to finish, or use another --work_dir "
                    "(delete the lock by hand if no job uses the directory)")
        message = (f"{self.run_dir} is in use by pid {holder['pid']} on host {holder['host']} "
                   f"since {holder.get('started', '?')} ({_short(holder.get('command', '?'))}); "
                   "wait for it to finish, or use another --work_dir")
        if holder["host"] != socket.gethostname():
            message += f" (if that job is dead, delete {self.path} by hand)"
        return message


def _stale_reason(holder, age):
    """Why a lock is stale ("pid N (not running)"), or None while it may be held."""
    if holder is None:
        if age > UNREADABLE_GRACE_SECONDS:
            return f"an unfinished lock file ({age:.0f} s old)"
        return None
    if holder["host"] != socket.gethostname() or holder["pid"] == os.getpid():
        return None
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return f"pid {holder['pid']} (not running)"
    except PermissionError:  # alive, another user's
        return None
    return None


def _short(command, limit=200):
    command = " ".join(str(command).split())
    return command if len(command) <= limit else command[:limit - 3] + "..."


def _lock_error(run_dir, error):
    """A one-line OSError for a lock file the file system refused."""
    fixes = {errno.EROFS: f"{run_dir} is on a read-only file system: use another --work_dir",
             errno.ENOSPC: f"free disk space for {run_dir}, or use another --work_dir",
             errno.ENOTDIR: "a file is in the way: move it, or use another --work_dir",
             errno.EEXIST: "a file is in the way: move it, or use another --work_dir"}
    fix = fixes.get(error.errno, f"make {run_dir} writable, or use another --work_dir")
    where = error.filename or run_dir
    return _OneLineOSError(error.errno, f"could not lock {run_dir} ({where}: {error.strerror}); "
                                        f"{fix}", where)


class _OneLineOSError(OSError):
    """An OSError whose message is the given line (keeps `errno` and `filename`)."""

    def __str__(self):
        return self.strerror
