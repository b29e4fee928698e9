"""A disk that fills up in the middle of a write, for the whole-or-nothing writers' tests.

`fill_disk(monkeypatch)` makes every file that `svf_tf.atomic_files` opens
for writing accept a few bytes and then fail with ENOSPC, as a full disk
does: the half-written temporary is really on disk when the error comes.
`leftovers(directory)` lists what a failed write must not leave behind.
"""

import errno
import os

from svf_tf import atomic_files

ENOSPC_MESSAGE = os.strerror(errno.ENOSPC)


class _FillingFile:
    """A binary file that takes `room` bytes, then raises ENOSPC."""

    def __init__(self, file, room):
        self._file, self._room = file, room

    def write(self, data):
        if len(data) > self._room:
            self._file.write(data[:self._room])
            self._file.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, ENOSPC_MESSAGE)
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


def fill_disk(monkeypatch, room=10):
    """Every write of `svf_tf.atomic_files` stores `room` bytes, then fails with ENOSPC."""
    real_open = open

    def filling_open(path, mode="r", *args, **kwargs):
        file = real_open(path, mode, *args, **kwargs)
        return _FillingFile(file, room) if "w" in mode else file

    monkeypatch.setattr(atomic_files, "open", filling_open, raising=False)


def leftovers(directory):
    """Temporary files or directories anywhere under `directory` (names holding '.tmp')."""
    return sorted(os.path.join(d, name) for d, dirs, files in os.walk(directory)
                  for name in dirs + files if ".tmp" in name)
