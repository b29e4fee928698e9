"""One worker of the multi-worker tests (tests/runs/test_multi_worker.py), as a process.

    PYTHONPATH=<checkout> TF_CONFIG=... python tests/runs/multi_worker_job.py OUT.json \
        WORK_DIR CACHE_DIR [--kill_at=STEP] [--lr=LR]

Trains the toy task (tests/tasks/toy_task.py) with `run_training` under
`MultiWorkerMirroredStrategy` (the default strategy when TF_CONFIG is unset:
the single-process reference), then scores the saved synthetic test episodes
with `evaluate_episodes_distributed` and a fixed predictor. Writes OUT.json:
the loss of every step this process ran, the run summary's
loss per epoch and the evaluation report (the trained variables are in the
run's checkpoints). `--kill_at=N` makes the
process SIGKILL itself when step N starts (a worker dying mid-epoch).
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402


def main(out, work_dir, cache_dir, *options):
    options = dict(option[2:].split("=", 1) for option in options)
    strategy = (tf.distribute.MultiWorkerMirroredStrategy() if os.environ.get("TF_CONFIG")
                else tf.distribute.get_strategy())

    from svf_tf.metrics.distributed_evaluation import evaluate_episodes_distributed
    from svf_tf.runs.trainer import run_training
    from svf_tf.tasks.few_shot import FewShotTask
    from tests.runs.trainer_helpers import tiny_config
    from tests.tasks.toy_task import ToyTask

    config = tiny_config(cache_dir, work_dir, epochs=3, steps_per_epoch=0, batch_size=4,
                         lr=float(options.get("lr", 0.5)), lr_schedule="constant",
                         momentum=0.9)
    losses, kill_at = [], int(options.get("kill_at", 0))

    class RecordingToyTask(ToyTask):
        def make_train_step(self, model, optimizer, strategy):
            step = super().make_train_step(model, optimizer, strategy)

            def recorded(batch):
                if kill_at and len(losses) + 1 == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                result = step(batch)
                losses.append(float(result["loss"]))
                return result

            return recorded

    task = RecordingToyTask(config, log=lambda *_: None)
    summary = run_training(task, strategy, log=lambda *_: None, checkpoint_every=3)

    # Evaluation: a fixed predictor (foreground where the query's red channel is bright).
    few_shot = FewShotTask(config, log=lambda *_: None)

    def predict(query_image, support_images, support_masks):
        red = query_image[..., :1]
        return tf.concat([tf.zeros_like(red), red - tf.reduce_mean(red)], axis=-1)

    report = evaluate_episodes_distributed(
        predict, lambda indices: few_shot.test_dataset(321, indices)[0],
        config.data.test_episodes, few_shot.num_novel, strategy)
    with open(out, "w") as f:
        json.dump({"losses": losses,
                   "epoch_losses": [r["loss"] for r in summary["history"]],
                   "steps": summary["steps"], "best_checkpoint": summary["best_checkpoint"],
                   "eval": {k: report[k] for k in ("miou", "fb_iou", "class_iou",
                                                   "class_episodes", "episodes")}}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
