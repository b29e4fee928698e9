"""Rebuilding a run's model and restoring one of its checkpoints (eval, export, predict)."""

import os

from svf_tf.runs.checkpointing import TrainingCheckpoint


def restore_model(task, checkpoint_path=None, on_built=None):
    """Builds `task`'s model and restores a checkpoint into it.

    Args:
        task: a `Task` whose config describes the run that wrote the checkpoint.
        checkpoint_path: a checkpoint prefix (".../ckpt-12") or a directory
            holding one; default the run's best checkpoint, `<work_dir>/best`.
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
    return model, restored
