"""Two real worker processes on 127.0.0.1 against one process: steps, parameters, evaluation.

Each worker is `tests/runs/multi_worker_job.py` (the toy task under
`MultiWorkerMirroredStrategy`, then the saved synthetic test episodes scored
by `evaluate_episodes_distributed`). The references are a single process
with the same global batch and, for the evaluation, `evaluate_episodes`.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.runs.test_trainer import latest_toy_values
from tests.runs.trainer_helpers import tiny_config
from tests.tasks.toy_task import toy_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOB = os.path.join(ROOT, "tests", "runs", "multi_worker_job.py")
TIMEOUT = 150

pytestmark = pytest.mark.slow  # real processes: ~40 s per two-worker job on 2 cores


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(tmp_path, name, work_dir, cache, workers=0, options=((),), scratch=None):
    """Starts the job as `workers` worker processes (0: one process, no TF_CONFIG).

    `scratch`: their $TMPDIR (default a new `<name>_tmp`).
    """
    if scratch is None:
        scratch = tmp_path / f"{name}_tmp"
        scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": ROOT, "TMPDIR": str(scratch),
           "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    cluster = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in range(max(workers, 1)):
        if workers:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": cluster},
                                           "task": {"type": "worker", "index": index}})
        log = open(tmp_path / f"{name}_{index}.log", "w")
        extra = options[index] if index < len(options) else ()
        processes.append(subprocess.Popen(
            [sys.executable, JOB, str(tmp_path / f"{name}_{index}.json"), str(work_dir), cache,
             *extra], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
    return processes, scratch


def finish(processes, tmp_path, name):
    """Waits for the processes; returns their exit codes."""
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=TIMEOUT))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise AssertionError(f"{name} did not finish in {TIMEOUT} s; see "
                                 f"{tmp_path}/{name}_*.log") from None
    return codes


def worker_dirs(scratch):
    """The non-chief workers' checkpoint directories in $TMPDIR `scratch`."""
    return [name for name in os.listdir(scratch) if name.startswith("svf_tf_worker_")]


def outputs(tmp_path, name, count):
    return [json.loads((tmp_path / f"{name}_{i}.json").read_text()) for i in range(count)]


@pytest.fixture(scope="module")
def runs(synthetic_cache, tmp_path_factory):
    """An uninterrupted two-worker job and the single-process reference, run side by side."""
    tmp_path = tmp_path_factory.mktemp("multi_worker")
    work = {name: toy_config(tmp_path / name).run_dir for name in ("one", "two")}
    one, one_tmp = start(tmp_path, "one", work["one"], synthetic_cache)
    two, two_tmp = start(tmp_path, "two", work["two"], synthetic_cache, workers=2)
    codes = finish(one + two, tmp_path, "the jobs")
    assert codes == [0, 0, 0], f"exit codes {codes}; see {tmp_path}/*.log"
    return tmp_path, work, two_tmp


def test_two_workers_take_the_steps_of_one_process(runs, synthetic_cache):
    tmp_path, work, scratch = runs
    (one,), (chief, other) = outputs(tmp_path, "one", 1), outputs(tmp_path, "two", 2)
    assert len(one["losses"]) == 12 and chief["steps"] == one["steps"] == 12
    np.testing.assert_allclose(chief["losses"], one["losses"], rtol=1e-5)
    assert other["losses"] == chief["losses"]  # the loss is reduced over every replica
    np.testing.assert_allclose(chief["epoch_losses"], one["epoch_losses"], rtol=1e-5)
    config = toy_config(tmp_path / "one")
    a = latest_toy_values(config)
    b = latest_toy_values(toy_config(tmp_path / "two"))
    assert sorted(a) == sorted(b) and len(a) == 2
    for path in a:
        np.testing.assert_allclose(b[path], a[path], rtol=1e-4, atol=1e-6, err_msg=path)

    # The evaluation: split over two workers, the counts of one process's `evaluate_episodes`.
    import tensorflow as tf

    from svf_tf.metrics.evaluation import evaluate_episodes
    from svf_tf.tasks.few_shot import FewShotTask

    task = FewShotTask(tiny_config(synthetic_cache, tmp_path / "eval"), log=lambda *_: None)

    def predict(query_image, support_images, support_masks):
        red = query_image[..., :1]
        return tf.concat([tf.zeros_like(red), red - tf.reduce_mean(red)], axis=-1)

    reference = evaluate_episodes(predict, task.test_dataset(321)[0], task.num_novel, verbose=0)
    for report in (chief["eval"], other["eval"], one["eval"]):
        for key in ("miou", "fb_iou", "class_iou", "class_episodes", "episodes"):
            assert report[key] == pytest.approx(reference[key], rel=1e-12, abs=0), key

    # Only the chief wrote the run directory; the other worker's scratch files are gone.
    run_dir = work["two"]
    assert sorted(os.listdir(run_dir)) == sorted(os.listdir(work["one"]))
    events = os.listdir(os.path.join(run_dir, "tensorboard"))
    assert len(events) == 1, events
    jobs = open(os.path.join(run_dir, "jobs.log")).read().splitlines()
    assert len(jobs) == 1, jobs
    assert not os.listdir(scratch), os.listdir(scratch)
    assert chief["best_checkpoint"] == other["best_checkpoint"]
    assert os.path.dirname(chief["best_checkpoint"]) == os.path.join(run_dir, "best")


def test_a_killed_worker_resumes_to_the_parameters_of_an_uninterrupted_job(runs,
                                                                              synthetic_cache):
    tmp_path, _, _ = runs
    work_dir = toy_config(tmp_path / "killed").run_dir
    # Worker 1 dies when step 8 starts (epoch 1, batch 3): the chief saved step 6 (mid-epoch).
    processes, scratch = start(tmp_path, "killed", work_dir, synthetic_cache, workers=2,
                               options=((), ("--kill_at=8",)))
    assert processes[1].wait(timeout=TIMEOUT) == -signal.SIGKILL
    try:  # the chief fails in its next collective, or waits: the scheduler ends the job
        processes[0].wait(timeout=20)
    except subprocess.TimeoutExpired:
        processes[0].kill()
        processes[0].wait()
    assert os.path.exists(os.path.join(work_dir, "latest", "ckpt-6.index"))
    # Worker 1 could not delete its checkpoint copies (nor AutoGraph its temporary files).
    (left,) = worker_dirs(scratch)
    assert os.listdir(scratch / left)
    restarted, _ = start(tmp_path, "resumed", work_dir, synthetic_cache, workers=2,
                         scratch=scratch)
    codes = finish(restarted, tmp_path, "the restarted job")
    assert codes == [0, 0], f"exit codes {codes}; see {tmp_path}/resumed_*.log"
    assert not worker_dirs(scratch)  # worker 1 took its directory again, and deleted it
    chief = outputs(tmp_path, "resumed", 1)[0]
    assert chief["steps"] == 12 and len(chief["losses"]) == 6  # steps 7..12
    (uninterrupted,) = outputs(tmp_path, "two", 1)
    np.testing.assert_allclose(chief["losses"], uninterrupted["losses"][6:], rtol=1e-5)
    a = latest_toy_values(toy_config(tmp_path / "two"))
    b = latest_toy_values(toy_config(tmp_path / "killed"))
    for path in a:
        np.testing.assert_allclose(b[path], a[path], rtol=1e-5, atol=1e-6, err_msg=path)


def test_other_settings_or_a_locked_chief_stop_every_worker_with_one_line(synthetic_cache,
                                                                         tmp_path):
    # Worker 1 with another learning rate: both refuse at start-up, before any step.
    processes, _ = start(tmp_path, "differ", toy_config(tmp_path / "differ").run_dir,
                         synthetic_cache, workers=2, options=((), ("--lr=0.1",)))
    # The chief's run directory is locked by another live job (this test's process).
    locked = toy_config(tmp_path / "locked").run_dir
    os.makedirs(locked)
    with open(os.path.join(locked, "run.lock"), "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": "now",
                   "command": "another job"}, f)
    processes += start(tmp_path, "locked", locked, synthetic_cache, workers=2)[0]
    assert finish(processes, tmp_path, "the refused jobs") == [1, 1, 1, 1]
    logs = [(tmp_path / f"{name}_{i}.log").read_text() for name in ("differ", "locked")
            for i in range(2)]
    for log in logs[:2]:
        assert "worker 1 was started with other settings than worker 0" in log
    assert "is in use by pid" in logs[2]
    assert "worker 0 of this job could not start" in logs[3]
    assert not os.path.exists(os.path.join(tmp_path / "differ", "run", "latest"))
    assert os.listdir(locked) == ["run.lock"]
