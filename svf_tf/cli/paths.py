"""File-system faults as one line that names the path and the fix.

A user meets the file system through the directories and files the command
line names (`--work_dir`, `--cache_dir`, `--export_dir`, a script's
`--output`, `$SVF_TF_CACHE`, `$HOME`'s caches). Three tools cover every fault:

- `ensure_writable_dir` / `check_output_file` check such a path before
  anything is written (an existing file where a directory is wanted, a parent
  that is a file, permission denied, a read-only or full file system), by
  creating and deleting a small probe file. They never import TensorFlow and
  take milliseconds, so a job fails before it builds a model.
- Writing whole-or-nothing files is `svf_tf.atomic_files`.
- `describe_os_error` turns an `OSError` raised later (a disk that fills up
  during a checkpoint save, a directory removed under a running job) into
  one line; `tensorflow_error_as_os_error` does the same for TensorFlow's
  own file-system errors, whose messages end in the C library's wording
  ("<path>; No space left on device"). svf_tf.cli.errors.run() applies both
  to whatever a command raises.

Every directory checked with a `flag` is remembered, so that a later error
under it also names the flag that chose it ("(--work_dir='runs/x')").
"""

import errno
import io
import os
import re
import uuid

#: The file-system errnos recognised in TensorFlow's messages (by the C library's wording).
FILE_SYSTEM_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES,
                      errno.EPERM, errno.ENOTDIR, errno.EISDIR)

#: errno -> (what happened, with {path}; the default fix).
_PROBLEMS = {
    errno.ENOSPC: ("no space left on the device of {path}",
                   "free disk space or write to another disk, then run again"),
    errno.EDQUOT: ("disk quota exceeded writing {path}",
                   "free space within your quota or write to another disk, then run again"),
    errno.EFBIG: ("file too large: {path} reached the file-size limit (ulimit -f) or the file "
                  "system's largest file", "raise the limit or write to another file system, "
                  "then run again"),
    errno.EROFS: ("{path} is on a read-only file system",
                  "give a path on a writable file system"),
    errno.EACCES: ("permission denied for {path}",
                   "give a path you have access to, or change its permissions"),
    errno.EPERM: ("operation not permitted on {path}",
                  "give a path you may write to, or change its permissions"),
    errno.EISDIR: ("{path} is a directory, not a file", "give a file path"),
    errno.ENOENT: ("{path} does not exist", "check the path"),
    errno.ENAMETOOLONG: ("the file name {path} is too long", "give a shorter path"),
    errno.EMFILE: ("too many open files (at {path})", "raise the limit (ulimit -n), then run "
                   "again"),
    errno.ENFILE: ("too many open files in the system (at {path})",
                   "close other programs or raise the system's limit, then run again"),
    errno.EIO: ("input/output error on {path}",
                "the disk or network file system failed: check it, then run again"),
    errno.ELOOP: ("too many levels of symbolic links in {path}",
                  "fix the links or give another path"),
}

#: Absolute directory -> the flag (or variable) that named it, from `ensure_writable_dir`.
_NAMED_DIRS = {}

_PROBE_PREFIX = ".svf_tf_write_probe-"
_PARENTS_FIX = "give a path whose parents are directories"


def _shown(path, flag):
    return f"{flag}={path!r}" if flag else repr(path)


def _file_in_the_way(path):
    """The first existing component of `path` that is not a directory, or None."""
    current = os.path.abspath(path)
    parts = []
    while True:
        parts.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for part in reversed(parts):
        if not os.path.exists(part):
            return None
        if not os.path.isdir(part):
            return part
    return None


def _path_of(error):
    """The path an OSError is about.

    Its filename (the target, for a rename), else the one h5py quotes in its
    message, else the file being written where it was raised: a failed
    `file.write()` (a full disk) names no file, but the open file object is
    a local variable of the frame that wrote.
    """
    if error.filename is not None:
        return os.fsdecode(error.filename2 if error.filename2 is not None else error.filename)
    found = re.search(r"\b(?:file)?name = '([^']+)'", str(error))
    if found:
        return found.group(1)
    return _file_written_in(error.__traceback__)


def _file_written_in(traceback):
    """The name of a file open for writing in the innermost frame of `traceback` that has one."""
    frames = []
    while traceback is not None:
        frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            name, mode = getattr(value, "name", None), getattr(value, "mode", "")
            if (isinstance(value, io.IOBase) and isinstance(name, str) and isinstance(mode, str)
                    and set(mode) & set("wax+")):
                return name
    return None


def _named_flag(path):
    """The suffix " (--flag='dir')" when `path` lies in a directory checked with a flag."""
    if not path:
        return ""
    target = os.path.abspath(path)
    for directory in sorted(_NAMED_DIRS, key=len, reverse=True):
        if target == directory or target.startswith(directory.rstrip(os.sep) + os.sep):
            flag, given = _NAMED_DIRS[directory]
            return f" ({_shown(given, flag)})"
    return ""


def _problem_and_fix(code, path, strerror=None):
    """(what happened, the fix) for errno `code` about `path` (None: not known)."""
    shown = repr(path) if path else "the file"
    if code == errno.ENOTDIR or (code == errno.EEXIST and path and os.path.isfile(path)):
        in_the_way = _file_in_the_way(path) if path else None
        if in_the_way is None:
            return f"a part of {shown} is not a directory", _PARENTS_FIX
        if in_the_way == os.path.abspath(path):
            return f"{shown} is a file, not a directory", "give a directory path"
        return f"{in_the_way!r} is a file, not a directory (in {shown})", _PARENTS_FIX
    if code == errno.EEXIST:
        return f"{shown} already exists", "remove it or give another path"
    if code in _PROBLEMS:
        problem, fix = _PROBLEMS[code]
        return problem.format(path=shown), fix
    reason = (strerror or os.strerror(code)).rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    return f"{reason}: {shown}", "check the path and its file system, then run again"


def describe_os_error(error: OSError) -> str:
    """One line for an OSError: what happened to which path, and the fix.

    Errors raised by svf_tf with their own message (no errno, or an OSError
    class of svf_tf's, e.g. a failed checkpoint save) keep it.

    Args:
        error: any OSError (PermissionError, FileExistsError, a full disk's
            `OSError(ENOSPC)`, h5py's errors that quote the file name, ...).

    Returns:
        e.g. "no space left on the device of 'runs/x/best/ckpt-3.index'
        (--work_dir='runs/x'): free disk space or write to another disk,
        then run again."
    """
    if error.errno is None or type(error).__module__.startswith("svf_tf"):
        text = " ".join(str(error).split())
        return text or type(error).__name__
    path = _path_of(error)
    problem, fix = _problem_and_fix(error.errno, path, error.strerror)
    problem = problem[:1].upper() + problem[1:]
    return f"{problem}{_named_flag(path)}: {fix}."


def tensorflow_error_as_os_error(error: BaseException) -> OSError | None:
    """The OSError behind a TensorFlow file-system error, or None if it is not one.

    TensorFlow reports a failed file operation as an `OpError`
    (PermissionDeniedError, ResourceExhaustedError, OutOfRangeError,
    FailedPreconditionError, UnknownError, ...) whose message is
    "<path>; <the C library's wording>" or "<path> is not a directory". Only
    the file-system errnos of `FILE_SYSTEM_ERRNOS` are recognised: an
    out-of-memory ResourceExhaustedError is not one.
    """
    message = getattr(error, "message", None) or str(error)
    message = re.sub(r"^\s*\{\{[^}]*\}\}\s*", "", message.strip())
    message = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", message)
    wording = {os.strerror(code): code for code in FILE_SYSTEM_ERRNOS}
    found = re.fullmatch(r"(.+) is not a directory", message, flags=re.DOTALL)
    if found:
        return OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), _tf_path(found.group(1)))
    context, _, reason = message.rpartition("; ")
    if reason.strip() not in wording:
        return None
    return OSError(wording[reason.strip()], reason.strip(), _tf_path(context))


def _tf_path(context):
    """The path in TensorFlow's "<context>" (temp-state suffixes dropped)."""
    found = re.search(r"(?:^|\s)(/.*)$", context.strip(), flags=re.DOTALL)
    path = found.group(1) if found else context.strip()
    return re.sub(r"\.tempstate\d+$", "", path) or None


def _probe(directory):
    """Creates, writes one byte to and deletes a probe file in `directory` (OSError if not)."""
    probe = os.path.join(directory, f"{_PROBE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, b"\0")
    finally:
        os.close(descriptor)
        os.unlink(probe)


def _refuse(shown, action, error, path, fix):
    """The one-line OSError for `action` ("created", "written") of `shown` failing."""
    if error.errno is None:
        return OSError(f"{shown} cannot be {action}: {describe_os_error(error)}")
    problem, default_fix = _problem_and_fix(error.errno, path, error.strerror)
    return OSError(f"{shown} cannot be {action}: {problem}: {fix or default_fix}.")


def _check_directory(absolute, shown, *, create, fix):
    """`ensure_writable_dir`'s checks of absolute directory `absolute`, named `shown`."""
    in_the_way = _file_in_the_way(absolute)
    if in_the_way is not None:
        raise NotADirectoryError(f"{shown} cannot be created: {in_the_way!r} is a file, not a "
                                 f"directory: {fix or _PARENTS_FIX}.")
    if create:
        try:
            os.makedirs(absolute, exist_ok=True)
        except OSError as error:
            raise _refuse(shown, "created", error, _path_of(error) or absolute, fix) from None
    directory = absolute
    while not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    try:
        _probe(directory)
    except OSError as error:
        action = "written" if directory == absolute else "created"
        raise _refuse(shown, action, error, directory, fix) from None


def ensure_writable_dir(path: str, flag: str | None = None, *, create: bool = True,
                        fix: str | None = None) -> str:
    """Checks that files can be written in directory `path`, creating it if asked.

    Writability is tested by creating, writing one byte to and deleting a
    probe file, which catches permissions, read-only and full file systems
    alike (and works for root, whom permission bits do not stop).

    Args:
        path: the directory.
        flag: the flag or environment variable that named it ("--work_dir",
            "SVF_TF_CACHE"), for the message; errors met later under this
            directory name it too (`describe_os_error`).
        create: create `path` and its parents; False checks without creating
            anything: the nearest existing ancestor must be a writable
            directory (for fail-fast checks before a job starts).
        fix: the fix to name instead of the default one.

    Returns:
        The absolute path.

    Raises:
        NotADirectoryError: `path`, or one of its parents, is a file.
        OSError: it cannot be created or written (permission denied,
            read-only or full file system, ...); one line.
    """
    shown = _shown(path, flag)
    absolute = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        raise NotADirectoryError(f"{shown} is a file, not a directory: "
                                 f"{fix or 'give a directory path'}.")
    _check_directory(absolute, shown, create=create, fix=fix)
    if flag:
        _NAMED_DIRS[absolute] = (flag, path)
    return absolute


def check_output_file(path: str, flag: str | None = None, *, fix: str | None = None) -> str:
    """Checks, without creating anything, that file `path` can be written.

    Its directory must exist and be writable, or be creatable (the nearest
    existing ancestor is a writable directory).

    Args:
        path: the output file.
        flag: the flag that named it ("--output"), for the message.
        fix: the fix to name instead of the default one.

    Returns:
        The absolute path.

    Raises:
        IsADirectoryError: `path` is a directory.
        NotADirectoryError, OSError: as `ensure_writable_dir` for its directory.
    """
    shown = _shown(path, flag)
    absolute = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(absolute):
        raise IsADirectoryError(f"{shown} is a directory, not a file: "
                                f"{fix or 'give a file path'}.")
    _check_directory(os.path.dirname(absolute), shown, create=False, fix=fix)
    if os.path.exists(absolute) and not os.access(absolute, os.W_OK):
        raise PermissionError(f"{shown} cannot be written: permission denied for {path!r}: "
                              f"{fix or _PROBLEMS[errno.EPERM][1]}.")
    return absolute



