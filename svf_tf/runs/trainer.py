"""The training loop shared by every mode, in one readable function.

Sections: open the run directory (its lock, the run's identity, flags.txt:
`svf_tf.runs.run_directory`), setup (task, model, optimizer under the
strategy), restore (resume from the newest intact checkpoint, with the
history of the epochs before it), loop (distributed steps, progress bar,
summaries, the divergence guard, periodic checkpoints, stop signals),
evaluation (the task's validation, best checkpoint and the task's
best-model files, early stopping), summary.

What is specific to one kind of training lives in its task, an
implementation of `svf_tf.tasks.task.Task` (Model Garden's Task):
`FewShotTask` (episodic meta-training, `--mode=train`) and
`BaseLearnerTask` (BAM's stage 1, `--mode=train_base`). The loop calls
only the hooks that class declares.

Where a run stands is the checkpoint's (epoch, step in epoch): an epoch's
last checkpoint is written when its steps are done and before it is
validated, so a run stopped during validation validates that epoch again
when resumed; once the epoch's record is written, a resumed run (or a
finished run started again) goes on from the next epoch and keeps the
record. The per-epoch history is kept in `<work_dir>/history.json`, so a
resumed run's summary covers every epoch: `train_seconds` is the time of
all its epochs, `best_eval` the validation metrics of the best
checkpoint's epoch, `seconds` this job's own time. An epoch's record holds its
mean loss, the task's training metrics from the counts its steps returned
(`Task.train_metrics`: for few-shot training `train/miou` and
`train/fb_iou` of the training episodes; a resumed epoch counts the steps
this job ran), the singular-value drift and the validation metrics.
"""

import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from svf_tf.runs.checkpointing import TrainingCheckpoint, newest_checkpoint
from svf_tf.runs.cluster import (
    agree_on_start,
    distributed_batches,
    settings_digest,
    worker_count,
    worker_index,
    worker_scratch_dir,
)
from svf_tf.runs.interrupts import StopSignals, TrainingInterrupted
from svf_tf.runs.run_directory import open_run
from svf_tf.runs.run_files import read_json, write_json
from svf_tf.runs.strategy import is_chief
from svf_tf.tasks.task import COUNT_PREFIX, trainable_counts


class NonFiniteLossError(FloatingPointError):
    """The loss or the training state became non-finite (or diverged); nothing was saved."""


def make_state_check(model, optimizer):
    """`fn() -> (all finite, largest |value|)` over what a step's update writes.

    That is the trainable variables and the optimizer's state, read once per
    step. The rest (a frozen backbone, SVF's U and V: most of the model) is
    not read on this hot path; every variable is still checked before a
    checkpoint is published (`TrainingCheckpoint` with `value_limit`).
    """
    variables = [v for v in [*model.trainable_variables, *optimizer.variables]
                 if "float" in str(v.dtype) and math.prod(v.shape) > 0]

    @tf.function
    def check():
        finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v))
                                         for v in variables]))
        largest = tf.reduce_max(tf.stack([tf.cast(tf.reduce_max(tf.abs(v)), tf.float32)
                                          for v in variables]))
        return finite, largest

    return check, variables


def first_bad_variable(variables, limit):
    """(path, description) of the first variable that is non-finite or over `limit`."""
    for variable in variables:
        value = np.asarray(variable)
        if not np.all(np.isfinite(value)):
            return variable.path, "non-finite values"
        largest = float(np.max(np.abs(value)))
        if limit and largest > limit:
            return variable.path, f"|value| up to {largest:.3g}"
    return "?", "?"


def _load_history(run_dir, completed_epochs):
    """The recorded epochs a resumed run keeps (those its checkpoint has completed)."""
    path = os.path.join(run_dir, "history.json")
    if not os.path.isfile(path):
        return []
    return [record for record in read_json(path) if record["epoch"] <= completed_epochs]


def _previous_summary(run_dir):
    path = os.path.join(run_dir, "summary.json")
    return read_json(path) if os.path.isfile(path) else {}


def _best_record(history, metric_names):
    """The validation metrics of the best checkpoint's epoch (None before any)."""
    best = [record for record in history if "best" in record]
    return {key: best[-1][key] for key in ("epoch", *metric_names)} if best else None


def _since_best(history, best_miou):
    """Epochs since the best validation mIoU, as the early-stop rule counts them."""
    evaluated = [record for record in history if "miou" in record]
    if best_miou is None or not evaluated:
        return 0
    best_epoch = max((record["epoch"] for record in evaluated if record["miou"] >= best_miou),
                     default=evaluated[-1]["epoch"])
    return evaluated[-1]["epoch"] - best_epoch


def run_training(task, strategy, *, log=print, checkpoint_every=500):
    """Runs the loop of the module docstring for `task`; returns the run summary."""
    config = task.config
    chief = is_chief(strategy)
    try:
        run = open_run(config, task.mode, writer=chief, log=log)
    except BaseException:
        agree_on_start(strategy, None)  # the other workers stop too
        raise
    signals = StopSignals(log, on_abort=[run.close])
    try:
        with signals:
            return _train(task, strategy, run, signals, log, checkpoint_every)
    finally:
        run.close()


def _train(task, strategy, run, signals, log, checkpoint_every):
    # Setup.
    config = task.config
    start_time = time.perf_counter()
    run_dir = run.path
    optim = config.optim
    steps_per_epoch = task.steps_per_epoch()
    fingerprints = task.data_fingerprint()
    run.check_data(fingerprints)
    # Before any variable exists: a worker with other settings would hang in a collective.
    agree_on_start(strategy, settings_digest(
        {"mode": task.mode, "settings": run.settings, "data": fingerprints,
         "checkpoint_every": checkpoint_every}))
    # The same seed gives the same initial weights (heads, random backbones) and
    # dropout stream; data randomness is keyed by (seed, epoch, index) itself.
    keras.utils.set_random_seed(config.run.seed)
    with strategy.scope():
        model = task.build_model()
        optimizer = task.build_optimizer(model, optim.epochs * steps_per_epoch)
    svf_trainable, other_trainable = trainable_counts(model)
    # Before the restore: the singular values' drift is measured from the decomposition
    # of the starting weights, however often the run was resumed.
    epoch_metrics = task.make_epoch_metrics(model)
    log(task.describe(svf_trainable, other_trainable, steps_per_epoch,
                      strategy.num_replicas_in_sync))
    limit = optim.weight_limit or None

    # Restore.
    if run.writer:
        checkpoint = TrainingCheckpoint(run_dir, model, optimizer, log=log, value_limit=limit)
        checkpoint.clean_staging()
        resumed = checkpoint.restore_latest()
    else:
        # A non-chief worker takes part in every save (reading a variable may be a
        # collective) but writes into a scratch directory it deletes at the end,
        # TensorFlow's multi-worker checkpoint convention; it resumes from the chief's.
        scratch = worker_scratch_dir(run_dir, worker_index(strategy))
        run.on_close(lambda: shutil.rmtree(scratch, ignore_errors=True))
        checkpoint = TrainingCheckpoint(scratch, model, optimizer, log=log, value_limit=limit)
        # The chief's newest published checkpoint, which is what the chief resumes from.
        published = newest_checkpoint(os.path.join(run_dir, "latest"))
        resumed = checkpoint.restore(published) if published else None
    start_epoch = int(checkpoint.epoch.numpy())
    start_in_epoch = int(checkpoint.step_in_epoch.numpy())
    history = []
    if resumed:
        # A checkpoint at the end of an epoch whose record was written (after its
        # validation) resumes at the next epoch: the record, with its loss and time, stands.
        # Several workers validate that epoch again (as they would if the record were
        # missing): a non-chief may not see the chief's history.json, and every worker
        # must take the same path through the validation's collectives.
        ended = start_in_epoch >= steps_per_epoch and worker_count(strategy) == 1
        history = _load_history(run_dir, start_epoch + ended)
        if ended and history and history[-1]["epoch"] == start_epoch + 1:
            start_epoch, start_in_epoch = start_epoch + 1, 0
        log(f"resumed from {resumed} (epoch {start_epoch}, step {start_in_epoch} of it)")
    train_step = task.make_train_step(model, optimizer, strategy)
    state_check, checked_variables = make_state_check(model, optimizer)
    validate = (task.make_validation(model) if worker_count(strategy) == 1
                else task.make_distributed_validation(model, strategy))
    writer = (tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard")) if run.writer
              else tf.summary.create_noop_writer())
    best_miou = TrainingCheckpoint.read_best_miou(run_dir)
    since_best, last_report = _since_best(history, best_miou), None
    saved_step = int(checkpoint.step.numpy())

    def save(epoch, step_in_epoch):
        nonlocal saved_step
        with signals.critical():
            path = checkpoint.save(epoch, step_in_epoch)
            saved_step = int(checkpoint.step.numpy())
        return path

    try:
        # Loop.
        for epoch in range(start_epoch, optim.epochs):
            skip = start_in_epoch if epoch == start_epoch else 0
            epoch_losses, epoch_counts, epoch_start = [], {}, time.perf_counter()
            if skip < steps_per_epoch:
                progress = keras.utils.Progbar(steps_per_epoch, stateful_metrics=["loss", "lr"],
                                               unit_name="step")
                progress.update(skip)
                batches = distributed_batches(strategy, task, epoch, skip)
                for index, batch in enumerate(batches, skip):
                    with signals.critical():
                        losses = _accumulate(train_step(batch), epoch_counts)
                        step = int(checkpoint.step.numpy()) + 1
                        _guard(losses, state_check, checked_variables, limit, step, epoch,
                               index, checkpoint)
                        checkpoint.step.assign(step)
                        checkpoint.epoch.assign(epoch)
                        checkpoint.step_in_epoch.assign(index + 1)
                        epoch_losses.append(losses["loss"])
                        learning_rate = float(optimizer.learning_rate)
                        progress.update(index + 1, [("loss", losses["loss"]),
                                                    ("lr", learning_rate)])
                        with writer.as_default(step=step):
                            for name, value in losses.items():
                                tf.summary.scalar(f"train/{name}", value)
                            tf.summary.scalar("train/learning_rate", learning_rate)
                        if checkpoint_every and step % checkpoint_every == 0 \
                                and index + 1 < steps_per_epoch:
                            save(epoch, index + 1)
                    signals.raise_if_requested()
                save(epoch, steps_per_epoch)
            extra = {**task.train_metrics(epoch_counts), **epoch_metrics()}
            with writer.as_default(step=int(checkpoint.step.numpy())):
                for name, value in extra.items():
                    tf.summary.scalar(name, value)
            record = {"epoch": epoch + 1,
                      "loss": float(np.mean(epoch_losses)) if epoch_losses else None,
                      "seconds": time.perf_counter() - epoch_start, **extra}

            # Evaluation.
            if (epoch + 1) % optim.eval_every == 0 or epoch + 1 == optim.epochs:
                last_report = validate()
                record.update({key: last_report[key] for key in task.metric_names})
                with writer.as_default(step=int(checkpoint.step.numpy())):
                    for key in task.metric_names:
                        tf.summary.scalar(f"val/{key}", last_report[key])
                if best_miou is None or last_report["miou"] > best_miou:
                    best_miou, since_best = last_report["miou"], 0
                    with signals.critical():
                        best_path = checkpoint.save_best(
                            best_miou, epoch + 1,
                            {key: last_report[key] for key in task.metric_names
                             if key != "miou"})
                        if run.writer:
                            task.on_new_best(model, run_dir)
                    record["best"] = best_path
                else:
                    since_best += optim.eval_every
            # The next epoch starts here: resuming from now on does not validate again.
            checkpoint.epoch.assign(epoch + 1)
            checkpoint.step_in_epoch.assign(0)
            history.append(record)
            if run.writer:
                write_json(os.path.join(run_dir, "history.json"), history)
            loss_text = "n/a" if record["loss"] is None else f"{record['loss']:.4f}"
            log(f"epoch {epoch + 1}/{optim.epochs}: loss {loss_text}"
                + "".join(f", {label} {record[key]:.4f}"
                          for key, label in task.metric_names.items() if key in record)
                + (" (best)" if "best" in record else "") + f", {record['seconds']:.0f} s")
            signals.raise_if_requested()
            if optim.early_stop and since_best >= optim.early_stop:
                log(f"early stop: no better validation mIoU for {since_best} epochs")
                break
    except TrainingInterrupted as stop:
        # The state after the last completed step is consistent: save it if it is new.
        stop.step = int(checkpoint.step.numpy())
        if stop.step != saved_step:
            stop.checkpoint = save(int(checkpoint.epoch.numpy()),
                                   int(checkpoint.step_in_epoch.numpy()))
        else:
            stop.checkpoint = checkpoint.latest_path
        writer.flush()
        raise
    writer.flush()
    if last_report is None and resumed:  # a finished run, run again: nothing was evaluated
        last_report = _previous_summary(run_dir).get("last_eval")

    # Summary.
    summary = {
        "mode": task.mode,
        "work_dir": run_dir,
        "best_miou": best_miou,
        # A non-chief worker's own copy is deleted with its scratch directory: name the chief's.
        "best_checkpoint": checkpoint.best_path if run.writer or not checkpoint.best_path
        else os.path.join(run_dir, "best", os.path.basename(checkpoint.best_path)),
        "best_eval": _best_record(history, task.metric_names),
        "last_eval": last_report,
        "svf_trainable_values": svf_trainable,
        "other_trainable_values": other_trainable,
        "steps": int(checkpoint.step.numpy()),
        "seconds": time.perf_counter() - start_time,
        "train_seconds": sum(record["seconds"] for record in history),
        **task.summary_fields(),
        "history": history,
        "config": config.to_dict(),
    }
    if run.writer:
        write_json(os.path.join(run_dir, "summary.json"), summary)
    return summary


def _accumulate(result, counts):
    """The step's losses as floats; its counts (`COUNT_PREFIX` entries) added into `counts`."""
    losses = {}
    for name, value in result.items():
        if name.startswith(COUNT_PREFIX):
            value = np.asarray(value, np.float64)
            key = name[len(COUNT_PREFIX):]
            counts[key] = counts[key] + value if key in counts else value
        else:
            losses[name] = float(value)
    return losses


def _guard(losses, state_check, variables, limit, step, epoch, index, checkpoint):
    """Stops the run when a step's loss or resulting state is non-finite or diverged."""
    where = f"step {step} (epoch {epoch}, batch {index})"
    last_good = (f"The last good checkpoint is {checkpoint.latest_path}" if checkpoint.latest_path
                 else "No checkpoint was written yet")
    if not math.isfinite(losses["loss"]):
        raise NonFiniteLossError(
            f"The loss became {losses['loss']} at {where}; stopped without saving. "
            f"{last_good}; lower --lr or check the data.")
    finite, largest = state_check()
    if bool(finite) and (limit is None or float(largest) <= limit):
        return
    name, problem = first_bad_variable(variables, limit)
    bound = f" (--weight_limit={limit:g})" if limit and bool(finite) else ""
    raise NonFiniteLossError(
        f"The update of {where} diverged: {name} has {problem}{bound}; stopped without saving "
        f"it. {last_good}; lower --lr.")
