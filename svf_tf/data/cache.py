"""Where svf_tf keeps generated files (fold lists, the synthetic dataset).

Everything goes under one directory, `$SVF_TF_CACHE` if set, else
`~/.cache/svf_tf`. Dataset directories are never written to. `check_cache_dir`
refuses, in one line, a cache that cannot be written (a file, a read-only
place, a HOME that is not a writable directory) before a job starts.
"""

import os

from svf_tf.cli.paths import ensure_writable_dir

CACHE_FIX = "set SVF_TF_CACHE or --cache_dir to a writable directory"


def svf_tf_cache_dir() -> str:
    """The root cache directory: `$SVF_TF_CACHE` or `~/.cache/svf_tf`."""
    root = os.environ.get("SVF_TF_CACHE") or os.path.join("~", ".cache", "svf_tf")
    return os.path.abspath(os.path.expanduser(root))


def check_cache_dir(cache_dir: str | None = None, *, create: bool = False) -> str:
    """The cache directory a job will use, refused in one line if it cannot be written.

    Args:
        cache_dir: `--cache_dir`; None means `$SVF_TF_CACHE`, else
            `~/.cache/svf_tf`.
        create: create it now; False only checks that it could be (nothing is
            left behind).

    Returns:
        The absolute cache directory.

    Raises:
        NotADirectoryError, OSError: one line naming where the path came from
            (--cache_dir, SVF_TF_CACHE or HOME) and the fix.
    """
    if cache_dir:
        return ensure_writable_dir(cache_dir, "--cache_dir", create=create, fix=CACHE_FIX)
    if os.environ.get("SVF_TF_CACHE"):
        return ensure_writable_dir(os.environ["SVF_TF_CACHE"], "SVF_TF_CACHE", create=create,
                                   fix=CACHE_FIX)
    try:
        return ensure_writable_dir(svf_tf_cache_dir(), create=create, fix=CACHE_FIX)
    except OSError as error:  # the default comes from HOME: name it
        raise type(error)(f"The default cache (HOME={os.environ.get('HOME')!r}): "
                          f"{error}") from None


def check_outside(path: str, data_root: str, what: str = "Cache directory",
                  flag: str = "--cache_dir or $SVF_TF_CACHE") -> None:
    """Raises ValueError if `path` lies inside `data_root`.

    svf_tf never modifies a dataset directory, so caches and outputs inside one
    are refused rather than silently polluting it.

    Args:
        path: the directory that will be written.
        data_root: the dataset root.
        what: what `path` is, for the message.
        flag: how to choose another directory, for the message.
    """
    target = os.path.realpath(path)
    root = os.path.realpath(data_root)
    if target == root or target.startswith(root + os.sep):
        raise ValueError(
            f"{what} {path!r} is inside the dataset root {data_root!r}, and svf_tf never writes "
            f"into a dataset: choose a directory outside it ({flag})."
        )
