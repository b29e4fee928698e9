"""Where svf_tf keeps generated files (fold lists, the synthetic dataset).

Everything goes under one directory, `$SVF_TF_CACHE` if set, else
`~/.cache/svf_tf`. Dataset directories are never written to.
"""

import os


def svf_tf_cache_dir() -> str:
    """The root cache directory: `$SVF_TF_CACHE` or `~/.cache/svf_tf`."""
    root = os.environ.get("SVF_TF_CACHE") or os.path.join("~", ".cache", "svf_tf")
    return os.path.abspath(os.path.expanduser(root))


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
