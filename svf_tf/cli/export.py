"""`--mode=export`: a checkpoint, SVF merged, as a SavedModel."""

import os

from svf_tf.atomic_files import staged_directory
from svf_tf.export.saved_model import export_fsss_model
from svf_tf.runs.restore import adapter_name, restore_model
from svf_tf.tasks.few_shot import FewShotTask


def export_checkpoint(config, checkpoint_path=None, export_dir=None, adapters=(), log=print):
    """Restores a checkpoint (default: the run's best) and writes a SavedModel.

    The SVF layers are merged into plain convolutions, so the SavedModel
    runs at the plain model's cost and loads with TensorFlow alone:
    `tf.saved_model.load(path).serve(query, support_images, support_masks)`.
    With `adapters` (files), one SavedModel serves each of them over the
    checkpoint: signature `serve_<file name>` per file, "serve" the first.

    Returns:
        The export directory.
    """
    model, restored = restore_model(FewShotTask(config, log), checkpoint_path)
    export_dir = export_dir or os.path.join(config.run_dir, "saved_model")
    # Whole or absent: a failed export leaves the previous SavedModel (if any) in place.
    with staged_directory(export_dir) as staging:
        export_fsss_model(model, staging, adapters=adapters)
    names = ", ".join(["serve"] + [f"serve_{adapter_name(p)}" for p in adapters])
    log(f"exported {restored} to {export_dir} (serving signatures {names}: "
        "query_image [B,H,W,3], "
        f"support_images [B,{config.data.shot},H,W,3], "
        f"support_masks [B,{config.data.shot},H,W] -> "
        "logits)")
    return export_dir


def export_mode(config, log=print):
    """`--mode=export` (svf_tf/cli/main.py): `--checkpoint` to `--export_dir`."""
    return export_checkpoint(config, config.checkpoint.checkpoint, config.export.export_dir,
                             config.checkpoint.adapter, log)
