"""`main.py` as several workers on 127.0.0.1: a worker that never comes, split evaluation.

Real processes (`--strategy=multi_worker`, TF_CONFIG with free ports), each
compared with what one process gives: the evaluation reports must be equal
exactly (the counts are summed over the workers), and only the chief writes.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.runs.test_multi_worker import ROOT, free_ports

pytestmark = pytest.mark.slow  # TensorFlow processes: ~30-45 s a test on 2 cores

DATA = ["--synthetic", "--backbone=vgg16", "--test_size=33", "--test_episodes=5"]
REPORT_KEYS = ("miou", "fb_iou", "class_iou", "class_episodes", "episodes")


def start_main(tmp_path, name, args, workers=0, indices=None):
    """`main.py args` as the workers `indices` of a `workers`-worker TF_CONFIG (0: one process)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    cluster = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in (range(max(workers, 1)) if indices is None else indices):
        if workers:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": cluster},
                                           "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "main.py"), *args,
             *(["--strategy=multi_worker"] if workers else ["--strategy=default"])],
            env=env, stdout=open(tmp_path / f"{name}_{index}.out", "w"),
            stderr=open(tmp_path / f"{name}_{index}.err", "w"), cwd=ROOT))
    return processes, cluster


def wait_all(processes, timeout=150):
    try:
        return [process.wait(timeout=timeout) for process in processes]
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        raise AssertionError(f"the workers did not finish in {timeout} s") from None


def test_a_worker_that_never_starts_stops_the_others_with_one_line(synthetic_cache, tmp_path):
    args = ["--mode=eval_prior", *DATA, f"--cache_dir={synthetic_cache}",
            "--worker_timeout=2"]
    # Worker 0 (the chief, which hosts TensorFlow's coordination service) alone, and
    # worker 1 alone of another cluster: each waits 2 s for the other, then stops.
    start = time.monotonic()
    chief, chief_cluster = start_main(tmp_path, "chief", [*args, f"--work_dir={tmp_path}/a"],
                                      workers=2, indices=[0])
    other, other_cluster = start_main(tmp_path, "other", [*args, f"--work_dir={tmp_path}/b"],
                                      workers=2, indices=[1])
    assert wait_all(chief + other, timeout=120) == [1, 1]
    assert time.monotonic() - start < 120
    for name, index, missing in (("chief", 0, f"worker 1 ({chief_cluster[1]})"),
                                 ("other", 1, f"worker 0 ({other_cluster[0]})")):
        lines = (tmp_path / f"{name}_{index}.err").read_text().strip().splitlines()
        assert lines == [f"error: TF_CONFIG's {missing} did not join this multi-worker job "
                         "within --worker_timeout=2 s: start every worker of TF_CONFIG with "
                         "the same flags (only the task index differs), check its address and "
                         "port are reachable from this host, or raise --worker_timeout."]
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def reports(path, key=None):
    result = json.loads(path.read_text())
    result = result if key is None else result[key]
    return [{k: report[k] for k in REPORT_KEYS} for report in result["reports"]]


def job_lines(run_dir, mode):
    return [line for line in (run_dir / "jobs.log").read_text().splitlines()
            if f"--mode={mode} " in line]


def test_eval_prior_over_two_workers_is_the_one_process_report(synthetic_cache, tmp_path):
    args = ["--mode=eval_prior", *DATA, f"--cache_dir={synthetic_cache}"]
    one, _ = start_main(tmp_path, "one", [*args, f"--work_dir={tmp_path}/one"])
    two, _ = start_main(tmp_path, "two", [*args, f"--work_dir={tmp_path}/two"], workers=2)
    assert wait_all(one + two) == [0, 0, 0], (tmp_path / "two_1.err").read_text()[-2000:]
    expected = reports(tmp_path / "one" / "eval_prior.json", "random @ 0.5")
    assert expected[0]["episodes"] == 5  # 3 + 2: one replica takes a padding episode
    assert reports(tmp_path / "two" / "eval_prior.json", "random @ 0.5") == expected
    assert sorted(os.listdir(tmp_path / "two")) == ["eval_prior.json", "jobs.log"]
    assert len(job_lines(tmp_path / "two", "eval_prior")) == 1  # the chief's
    for index in (0, 1):  # every worker prints the whole report
        assert "   321    " in (tmp_path / f"two_{index}.out").read_text()


@pytest.fixture(scope="module")
def trained_run(synthetic_cache, tmp_path_factory):
    """A tiny few-shot run (one step, frozen backbone) trained by one process."""
    run = tmp_path_factory.mktemp("eval_run") / "run"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "main.py"), "--mode=train", *DATA,
         f"--cache_dir={synthetic_cache}", f"--work_dir={run}", "--train_size=33",
         "--batch_size=2", "--epochs=1", "--steps_per_epoch=1", "--finetune=freeze",
         "--strategy=default"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_eval_over_two_workers_is_the_one_process_report(trained_run, tmp_path):
    runs = {name: tmp_path / name for name in ("one", "two")}
    for run in runs.values():
        shutil.copytree(trained_run, run)
    args = ["--mode=eval", "--eval_seeds=322"]
    one, _ = start_main(tmp_path, "one", [*args, f"--work_dir={runs['one']}"])
    two, _ = start_main(tmp_path, "two", [*args, f"--work_dir={runs['two']}"], workers=2)
    assert wait_all(one + two) == [0, 0, 0], (tmp_path / "two_1.err").read_text()[-2000:]
    expected = reports(runs["one"] / "eval.json")
    assert [report["episodes"] for report in expected] == [5]
    assert reports(runs["two"] / "eval.json") == expected
    assert len(job_lines(runs["two"], "eval")) == 1  # the chief's
