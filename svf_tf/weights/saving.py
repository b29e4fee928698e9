"""Keras `.weights.h5` files written whole or not at all (converted checkpoints, stage-1 weights).

`model.save_weights` writes its HDF5 file in place, so a full disk, a kill or
Ctrl-C leaves half a file where the previous one was. `save_weights_files`
saves each model to a hidden temporary sibling that keeps the `.weights.h5`
suffix Keras requires (`<dir>/.<name>.tmp-<pid>-<id>.weights.h5`), flushes it
to disk, and renames it over its target only once every file of the call is
written, so a pair (stage 1's base learner and its backbone) is replaced
together, never one without the other. The temporaries are removed on any
failure. Bytes and text files use `svf_tf.atomic_files`.
"""

import os
import uuid

WEIGHTS_SUFFIX = ".weights.h5"


def _temporary_sibling(path: str) -> str:
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory,
                        f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{WEIGHTS_SUFFIX}")


def _flush_to_disk(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(paths) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def save_weights_files(*saves) -> None:
    """Writes `model.save_weights(path)` for each (model, path), whole or not at all.

    Args:
        *saves: (Keras model or layer, path ending in ".weights.h5") pairs;
            the paths' directories must exist.

    Raises:
        ValueError: a path does not end in ".weights.h5".
        OSError: a file cannot be written (a full disk, a read-only or
            missing directory), naming its path. The targets are replaced
            only after every file was written, and no temporary is left.
    """
    for _, path in saves:
        if not os.fspath(path).endswith(WEIGHTS_SUFFIX):
            raise ValueError(f"Weights file {os.fspath(path)!r} must end in {WEIGHTS_SUFFIX!r} "
                             "(Keras' weights format): rename it.")
    staged = []  # (temporary, target)
    target = None
    try:
        for model, path in saves:
            target = os.fspath(path)
            staged.append((_temporary_sibling(target), target))
            model.save_weights(staged[-1][0])
            _flush_to_disk(staged[-1][0])
        for temporary, target in staged:
            os.replace(temporary, target)
    except OSError as error:
        _remove(temporary for temporary, _ in staged)
        # h5py's messages span lines and name the temporary: name the file asked for instead.
        if error.errno is not None:
            raise OSError(error.errno, os.strerror(error.errno), target) from error
        raise OSError(f"Cannot write the weights file {target!r}: "
                      f"{' '.join(str(error).split())[:200]}") from error
    except BaseException:
        _remove(temporary for temporary, _ in staged)
        raise
