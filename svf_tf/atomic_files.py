"""Files and directories written whole or not at all: a temporary sibling, then a rename.

A full disk, a killed process or Ctrl-C leaves the previous version (or
nothing), never half a file: `write_file_atomically` for files (run.json,
summaries, lists, episode files, weights), `staged_directory` for
directories (a SavedModel). Both remove their temporary on failure.
"""

import contextlib
import os
import shutil
import tempfile
import uuid


def write_file_atomically(path: str, data: bytes | str, *, durable: bool = True) -> None:
    """Writes `data` to `path` whole or not at all: a temporary file, then a rename.

    A full disk or a killed process leaves the previous `path` (or none),
    never half a file; the temporary file is removed on failure. Its parent
    directories are created.

    Args:
        path: the file.
        data: its bytes (str: UTF-8).
        durable: flush the file to the disk before the rename (a power cut
            cannot leave it empty). Files inside a `staged_directory`, which
            is published whole, can skip it (thousands of small files).

    Raises:
        OSError: naming `path` (a failed write names no file by itself).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    absolute = os.path.abspath(os.path.expanduser(path))
    temporary = f"{absolute}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.makedirs(os.path.dirname(absolute), exist_ok=True)
        with open(temporary, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, absolute)
    except OSError as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if error.errno is not None and error.filename in (None, temporary):
            raise OSError(error.errno, error.strerror, path) from error
        raise
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def staged_directory(path: str):
    """A directory written whole or not at all (a SavedModel, a folder of predictions).

    Yields a new temporary directory next to `path`; when the block ends
    normally it takes `path`'s place (an existing `path` is replaced), when
    it raises (a full disk, Ctrl-C) it is removed and `path` is untouched.

        with staged_directory(export_dir) as staging:
            tf.saved_model.save(module, staging)

    Args:
        path: the directory to publish; its parent is created.
    """
    absolute = os.path.abspath(os.path.expanduser(path))
    parent, name = os.path.split(absolute)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        if os.path.isdir(absolute) and not os.path.islink(absolute):
            old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.rename(absolute, os.path.join(old, name))
            try:
                os.rename(staging, absolute)
            except BaseException:
                os.rename(os.path.join(old, name), absolute)  # put the previous one back
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, absolute)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
