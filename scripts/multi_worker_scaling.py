"""Multi-worker figures: all-reduce volume per step, and 1 vs 2 workers on this machine.

    python scripts/multi_worker_scaling.py --out=scaling.json [--sections=bytes,workers]

Sections (`--sections`, comma separated):
  bytes    The bytes a `MultiWorkerMirroredStrategy` step all-reduces: the
           gradients of the trainable variables (one float32 value each), for
           the baseline (1-shot, --backbone) under each fine-tuning mode.
  workers  Training throughput of the same tiny synthetic run (VGG16-BN
           baseline, SVF, --size px, global batch --batch) as one worker and
           as two worker processes on 127.0.0.1 (`--strategy=multi_worker`,
           TF_CONFIG): steps/s and episodes/s of the second epoch (the first
           one traces the step), read from each run's history.json.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import app, flags  # noqa: E402

from svf_tf.config.flags import define_flags  # noqa: E402

# --backbone (the bytes section's) from the same setting as main.py's.
define_flags(names=("backbone",))
flags.DEFINE_string("out", None, "Write the figures here as JSON.")
flags.DEFINE_list("sections", ["bytes", "workers"], "bytes, workers.")
flags.DEFINE_integer("size", 65, "Crop size of the workers section.")
flags.DEFINE_integer("batch", 4, "Global batch of the workers section.")
flags.DEFINE_integer("steps", 6, "Steps per epoch of the workers section.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("svf", "freeze", "full")


def allreduce_bytes(backbone):
    """{fine-tuning mode: bytes of the trainable variables} of the 1-shot baseline."""
    from svf_tf.config.experiment import ExperimentConfig
    from svf_tf.tasks.few_shot import FewShotTask
    from svf_tf.tasks.task import trainable_counts

    figures = {}
    for mode in MODES:
        config = ExperimentConfig.from_settings(synthetic=True, backbone=backbone, finetune=mode)
        model = FewShotTask(config, log=lambda *_: None).build_model()
        svf, other = trainable_counts(model)
        size = sum(v.numpy().nbytes for v in model.trainable_variables)
        figures[mode] = {"svf_values": svf, "other_values": other, "bytes": size}
        print(f"{backbone} baseline, {mode}: {svf + other:,} trainable values, "
              f"{size / 2**20:.2f} MiB all-reduced per step", flush=True)
    return figures


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def throughput(workers, cache):
    """steps/s and episodes/s of the second epoch with `workers` worker processes."""
    work_dir = tempfile.mkdtemp(prefix=f"scaling_{workers}w_")
    command = [sys.executable, os.path.join(ROOT, "main.py"), "--mode=train",
               "--strategy=multi_worker", "--synthetic", "--backbone=vgg16", "--vgg_batch_norm",
               f"--train_size={FLAGS.size}", f"--test_size={FLAGS.size}", "--epochs=2",
               f"--steps_per_epoch={FLAGS.steps}", f"--batch_size={FLAGS.batch}",
               "--test_episodes=4", "--eval_every=2", f"--cache_dir={cache}",
               f"--work_dir={work_dir}"]
    cluster = [f"127.0.0.1:{_free_port()}" for _ in range(workers)]
    processes = []
    for index in range(workers):
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CONFIG": json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
    codes = [process.wait() for process in processes]
    if any(codes):
        raise RuntimeError(f"the {workers}-worker run failed (exit codes {codes}); rerun "
                           f"{' '.join(command)} with TF_CONFIG to see why")
    with open(os.path.join(work_dir, "history.json")) as f:
        seconds = json.load(f)[1]["seconds"]
    steps_per_second = FLAGS.steps / seconds
    figures = {"workers": workers, "steps_per_second": steps_per_second,
               "episodes_per_second": steps_per_second * FLAGS.batch}
    print(f"{workers} worker(s): {steps_per_second:.3f} steps/s, "
          f"{figures['episodes_per_second']:.2f} episodes/s", flush=True)
    return figures


def main(argv):
    del argv
    result = {"cpu_cores": os.cpu_count()}
    if "bytes" in FLAGS.sections:
        result["allreduce_bytes"] = allreduce_bytes(FLAGS.backbone)
    if "workers" in FLAGS.sections:
        cache = tempfile.mkdtemp(prefix="scaling_cache_")
        result["workers"] = [throughput(workers, cache) for workers in (1, 2)]
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    app.run(main)
