"""The training loop shared by every mode, in one readable function.

Sections: setup (task, model, optimizer under the strategy), restore (resume
from the newest checkpoint), loop (distributed steps, progress bar,
summaries, non-finite guard, periodic checkpoints), evaluation (the task's
validation, best checkpoint and the task's best-model files, early
stopping), summary.

What is specific to one kind of training lives in its task, an
implementation of `svf_tf.tasks.task.Task` (Model Garden's Task):
`FewShotTask` (episodic meta-training, `--mode=train`) and
`BaseLearnerTask` (BAM's stage 1, `--mode=train_base`). The loop calls
only the hooks that class declares.
"""

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from svf_tf.runs.checkpointing import TrainingCheckpoint
from svf_tf.runs.run_files import write_json
from svf_tf.tasks.task import trainable_counts


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run stopped before saving it."""


def run_training(task, strategy, *, log=print, checkpoint_every=500):
    """Runs the loop of the module docstring for `task`; returns the run summary."""
    # Setup.
    config = task.config
    start_time = time.perf_counter()
    run_dir = config.run_dir
    os.makedirs(run_dir, exist_ok=True)
    optim = config.optim
    steps_per_epoch = task.steps_per_epoch()
    # The same seed gives the same initial weights (heads, random backbones) and
    # dropout stream; data randomness is keyed by (seed, epoch, index) itself.
    keras.utils.set_random_seed(config.run.seed)
    with strategy.scope():
        model = task.build_model()
        optimizer = task.build_optimizer(model, optim.epochs * steps_per_epoch)
    svf_trainable, other_trainable = trainable_counts(model)
    log(task.describe(svf_trainable, other_trainable, steps_per_epoch,
                      strategy.num_replicas_in_sync))
    checkpoint = TrainingCheckpoint(run_dir, model, optimizer)

    # Restore.
    resumed = checkpoint.restore_latest()
    start_epoch = int(checkpoint.epoch.numpy())
    start_in_epoch = int(checkpoint.step_in_epoch.numpy())
    if resumed:
        log(f"resumed from {resumed} (epoch {start_epoch}, step {start_in_epoch} of it)")
    train_step = task.make_train_step(model, optimizer, strategy)
    validate = task.make_validation(model)
    epoch_metrics = task.make_epoch_metrics(model)
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard"))
    best_miou = checkpoint.best_miou()
    since_best, history, last_report = 0, [], None

    # Loop.
    for epoch in range(start_epoch, optim.epochs):
        skip = start_in_epoch if epoch == start_epoch else 0
        dataset = task.train_dataset(epoch).skip(skip)
        progress = keras.utils.Progbar(steps_per_epoch, stateful_metrics=["loss", "lr"],
                                       unit_name="step")
        progress.update(skip)
        epoch_losses, epoch_start = [], time.perf_counter()
        for index, batch in enumerate(strategy.experimental_distribute_dataset(dataset), skip):
            losses = {name: float(value) for name, value in train_step(batch).items()}
            step = int(checkpoint.step.numpy()) + 1
            if not math.isfinite(losses["loss"]):
                raise NonFiniteLossError(
                    f"The loss became {losses['loss']} at step {step} (epoch {epoch}, batch "
                    f"{index}); stopped without saving. The last good checkpoint is "
                    f"{checkpoint.latest.latest_checkpoint or 'none (none was written yet)'}; "
                    "lower --lr or check the data.")
            checkpoint.step.assign(step)
            epoch_losses.append(losses["loss"])
            learning_rate = float(optimizer.learning_rate)
            progress.update(index + 1, [("loss", losses["loss"]), ("lr", learning_rate)])
            with writer.as_default(step=step):
                for name, value in losses.items():
                    tf.summary.scalar(f"train/{name}", value)
                tf.summary.scalar("train/learning_rate", learning_rate)
            if checkpoint_every and step % checkpoint_every == 0 and index + 1 < steps_per_epoch:
                checkpoint.save(epoch, index + 1)
        checkpoint.save(epoch + 1, 0)
        extra = epoch_metrics()
        with writer.as_default(step=int(checkpoint.step.numpy())):
            for name, value in extra.items():
                tf.summary.scalar(name, value)
        record = {"epoch": epoch + 1, "loss": float(np.mean(epoch_losses)) if epoch_losses
                  else None, "seconds": time.perf_counter() - epoch_start, **extra}

        # Evaluation.
        if (epoch + 1) % optim.eval_every == 0 or epoch + 1 == optim.epochs:
            last_report = validate()
            record.update({key: last_report[key] for key in task.metric_names})
            with writer.as_default(step=int(checkpoint.step.numpy())):
                for key in task.metric_names:
                    tf.summary.scalar(f"val/{key}", last_report[key])
            if best_miou is None or last_report["miou"] > best_miou:
                best_miou, since_best = last_report["miou"], 0
                best_path = checkpoint.save_best(
                    best_miou, epoch + 1,
                    {key: last_report[key] for key in task.metric_names if key != "miou"})
                task.on_new_best(model, run_dir)
                record["best"] = best_path
            else:
                since_best += optim.eval_every
        history.append(record)
        log(f"epoch {epoch + 1}/{optim.epochs}: loss {record['loss']:.4f}"
            + "".join(f", {label} {record[key]:.4f}" for key, label in task.metric_names.items()
                      if key in record)
            + (" (best)" if "best" in record else "") + f", {record['seconds']:.0f} s")
        if optim.early_stop and since_best >= optim.early_stop:
            log(f"early stop: no better validation mIoU for {since_best} epochs")
            break
    writer.flush()

    # Summary.
    summary = {
        "mode": task.mode,
        "work_dir": run_dir,
        "best_miou": best_miou,
        "best_checkpoint": checkpoint.best.latest_checkpoint,
        "last_eval": last_report,
        "svf_trainable_values": svf_trainable,
        "other_trainable_values": other_trainable,
        "steps": int(checkpoint.step.numpy()),
        "seconds": time.perf_counter() - start_time,
        **task.summary_fields(),
        "history": history,
        "config": config.to_dict(),
    }
    write_json(os.path.join(run_dir, "summary.json"), summary)
    return summary
