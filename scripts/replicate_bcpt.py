"""Standard vs BCPT pre-training on the built-in synthetic dataset (BCPT paper Tables 1 and 2).

    python scripts/replicate_bcpt.py                          # seeds 321, 322, 323
    python scripts/replicate_bcpt.py --seeds=321              # one seed
    python scripts/replicate_bcpt.py --stages=pretrain,prior  # no meta-training
    python scripts/replicate_bcpt.py --tiny                   # seconds-long runs, for tests

Runs the `main.py` commands of `svf_tf.bcpt.replication` (pre-training,
non-parametric evaluation, frozen meta-training; each printed before it
runs, its output in `<out_dir>/logs/`) from the synthetic pre-trained
ResNet-50 (made on first use and cached). Every run is a run directory
under `<out_dir>`; a rerun skips what has finished and resumes what was
killed; a job whose backbone is not there yet (a stage left out) is skipped
with a line saying so. Writes `results.json` (every number, command and
setting), `results.md` (also printed): per backbone, the prior's mIoU /
FB-IoU and the meta-trained model's (best and last evaluation), mean +- std
over the seeds that have finished, and `results.png`: each seed's prior and
meta-trained mIoU per backbone.
"""

import json
import os

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.atomic_files import write_file_atomically  # noqa: E402
from svf_tf.bcpt.replication import (  # noqa: E402
    COMMON,
    META,
    PRETRAIN,
    PRIOR,
    STAGES,
    TRAINING,
    command,
    finished,
    markdown,
    plan,
    record,
    run_job,
    summarize,
)
from svf_tf.bcpt.replication_figure import plot_results  # noqa: E402
from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402

# The cache (dataset, lists, the synthetic pre-trained backbone): main.py's setting.
define_flags(names=("cache_dir",))

flags.DEFINE_string("out_dir", "runs/replicate_bcpt", "Directory of the experiment: its run "
                    "directories, logs/, results.json, results.md and results.png.")
flags.DEFINE_list("seeds", ["321", "322", "323"], "Seeds; each seed is a whole chain.")
flags.DEFINE_list("stages", ["pretrain", "prior", "meta"], "Stages to run: pretrain, prior, "
                  "meta (prior and meta need the pre-training of their seed).")
flags.DEFINE_bool("tiny", False, "Seconds-long runs at 33 px from a random start, for tests "
                  "(numbers meaningless).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    out_dir = os.path.abspath(FLAGS.out_dir)
    unknown = sorted(set(FLAGS.stages) - set(STAGES))
    if unknown:
        raise ValueError(f"--stages={','.join(FLAGS.stages)}: unknown {unknown}; give some of "
                         f"{','.join(STAGES)}.")
    if not all(seed.isdigit() for seed in FLAGS.seeds):
        raise ValueError(f"--seeds={','.join(FLAGS.seeds)} is not accepted: give non-negative "
                         "integers separated by commas, e.g. 321,322,323.")
    seeds = [int(seed) for seed in FLAGS.seeds]
    if FLAGS.tiny:
        start = None  # the tiny path checks the commands, not what a start teaches
    else:
        from svf_tf.weights.synthetic_backbone import ensure_synthetic_backbone
        start = ensure_synthetic_backbone("resnet50", cache_dir=FLAGS.cache_dir)
    log_dir = os.path.join(out_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    jobs = [(seed, *job) for seed in seeds
            for job in plan(seed, out_dir, start, FLAGS.cache_dir, FLAGS.tiny)]
    runs = []
    for number, (seed, stage, backbone, run_dir, values) in enumerate(jobs, 1):
        result = finished(stage, run_dir, values)
        weights = values.get("weights")
        if result is None and stage in FLAGS.stages and weights and not os.path.isfile(weights):
            print(f"[{number}/{len(jobs)}] {stage} {backbone}, seed {seed}: skipped, its "
                  f"backbone {weights} is not there (run --stages=pretrain first)", flush=True)
        elif result is None and stage in FLAGS.stages:
            run_job(number, len(jobs), stage, backbone, run_dir, values, log_dir)
            result = finished(stage, run_dir, values)
        if result is not None:
            runs.append({"seed": seed, "stage": stage, "backbone": backbone,
                         "run_dir": run_dir, "command": command(values)[1:],
                         "numbers": record(stage, result)})
    table = summarize(runs)
    report = {"settings": {"common": COMMON, "training": TRAINING, "pretrain": PRETRAIN,
                           "prior": PRIOR, "meta": META, "tiny": FLAGS.tiny, "seeds": seeds,
                           "start_weights": start},
              "table": table, "runs": runs}
    write_file_atomically(os.path.join(out_dir, "results.json"),
                          json.dumps(report, indent=1))
    plot_results(runs, os.path.join(out_dir, "results.png"))
    text = markdown(table, runs)
    write_file_atomically(os.path.join(out_dir, "results.md"),
                          text + "\n![prior and meta-trained mIoU per seed](results.png)\n")
    print(text + f"\nfigure: {os.path.join(out_dir, 'results.png')}")


if __name__ == "__main__":
    cli.run(main)
