"""Rebuilding a run's model and restoring one of its checkpoints (eval, export, predict, analyze).

An `--adapter` file goes over the restored SVF layers and replaces their
trained factors (eval, predict); export takes several, one signature each
(`svf_tf.export.saved_model`).
"""

import os
import re

from svf_tf.runs.checkpointing import TrainingCheckpoint


def restore_model(task, checkpoint_path=None, adapters=(), on_built=None):
    """Builds `task`'s model and restores a checkpoint into it.

    Args:
        task: a `Task` whose config describes the run that wrote the checkpoint.
        checkpoint_path: a checkpoint prefix (".../ckpt-12") or a directory
            holding one; default the run's best checkpoint, `<work_dir>/best`.
        adapters: at most one adapter file, loaded over the restored
            model's SVF layers (their trained factors are replaced).
        on_built: optional `fn(model)` called between building and restoring,
            e.g. to read the pre-trained state (`--mode=analyze` reads the
            initial singular values there).

    Returns:
        (model, path of the restored checkpoint).

    Raises:
        FileNotFoundError: no checkpoint there (the message says how to get one).
        ValueError: the checkpoint was written by another architecture.
    """
    run_dir = task.config.run_dir
    path = checkpoint_path or os.path.join(run_dir, "best")
    if not checkpoint_path and not os.path.isdir(path):
        raise FileNotFoundError(
            f"No best checkpoint in {path!r}: train first (--mode={task.mode} with this "
            "--work_dir) or pass --checkpoint.")
    model = task.build_model()
    if on_built is not None:
        on_built(model)
    restored = TrainingCheckpoint(run_dir, model).restore(path)
    load_adapters(model, adapters)
    return model, restored


def adapter_name(path):
    """A serving name for an adapter file: its file name without '.svf.npz'."""
    stem = os.path.basename(os.fspath(path)).removesuffix(".npz").removesuffix(".svf")
    return re.sub(r"[^A-Za-z0-9_]", "_", stem)[:64] or "adapter"


def load_adapters(model, paths):
    """Loads the one `--adapter` file of eval/predict over `model`'s SVF layers."""
    import svf_tf

    paths = list(paths)
    if len(paths) > 1:
        raise ValueError(
            f"--adapter: {len(paths)} files given; eval and predict take one (export writes "
            "one serving signature per file).")
    for path in paths:
        svf_tf.load_svf_weights(model, path)
