"""The run directory through `main.py`, as a user meets it (issue #14): identity, lock,
checkpoints that are whole or absent, the divergence guard, interrupts, disk full.

Every case runs real processes on tiny settings (VGG16-BN at 33 px, a few steps) and
checks the exit code, a single `error:` line without traceback, and hashes of the run
directory before and after. Marked tier: `pytest -m slow`.
"""

import hashlib
import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import link_synthetic_dataset

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]


def tiny(cache, work_dir, *extra):
    return ["--mode=train", "--synthetic", f"--cache_dir={cache}", f"--work_dir={work_dir}",
            "--backbone=vgg16", "--train_size=33", "--test_size=33", "--batch_size=2",
            "--test_episodes=4", "--svf_rank_multiple=1", "--scale_range=0.5,0.6",
            "--epochs=2", "--steps_per_epoch=3", *extra]


def run_main(*args, preexec_fn=None, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, preexec_fn=preexec_fn)


def start_main(*args):
    return subprocess.Popen([sys.executable, "-u", str(ROOT / "main.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def tree_hashes(directory, only=None):
    """{relative path: sha256} of every file under `directory` (of `only` names, if given).

    Symlinked directories are followed: the cache's dataset is the session's, linked in.
    """
    hashes = {}
    for folder, _, names in os.walk(directory, followlinks=True):
        for name in names:
            path = pathlib.Path(folder, name)
            relative = str(path.relative_to(directory))
            if path.is_file() and (only is None or relative.split(os.sep)[0] in only):
                hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(hashes.items()))


def assert_one_error_line(result, *fragments):
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def checkpoint_arrays(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if "model_variables" in key}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_cache):
    """(cache, a finished tiny SVF run): two epochs of three steps; tests work on copies.

    The cache links the session's synthetic dataset in (generating it again: ~13 CPU-s).
    """
    base = tmp_path_factory.mktemp("trained")
    cache = link_synthetic_dataset(base / "cache", synthetic_cache)
    run = base / "run"
    result = run_main(*tiny(cache, run))
    assert result.returncode == 0, result.stderr[-3000:]
    return cache, run


@pytest.fixture
def run_copy(trained, tmp_path):
    cache, run = trained
    shutil.copytree(run, tmp_path / "run")
    return cache, tmp_path / "run"


def test_another_experiment_in_the_directory_is_refused(run_copy):
    cache, run = run_copy
    before, dataset = tree_hashes(run), tree_hashes(cache)
    result = run_main(*tiny(cache, run, "--fold=1"))
    assert_one_error_line(result, "holds another experiment", "--fold was '0' there, '1' here",
                          "another --work_dir")
    freeze = [arg for arg in tiny(cache, run, "--finetune=freeze") if "svf_rank" not in arg]
    result = run_main(*freeze)
    assert_one_error_line(result, "--finetune was 'svf' there, 'freeze' here")
    assert tree_hashes(run) == before and tree_hashes(cache) == dataset


def test_rerunning_a_finished_run_resumes_it_with_its_history(run_copy):
    cache, run = run_copy
    flags_txt = (run / "flags.txt").read_bytes()
    result = run_main(*tiny(cache, run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 and [r["epoch"] for r in summary["history"]] == [1, 2]
    assert (run / "flags.txt").read_bytes() == flags_txt


def test_eval_export_predict_take_the_run_from_its_directory(run_copy, tmp_path):
    import cv2

    cache, run = run_copy
    pinned = ("flags.txt", "run.json", "latest", "best", "history.json", "summary.json")
    before = tree_hashes(run, only=pinned)
    result = run_main("--mode=export", f"--work_dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "saved_model" / "saved_model.pb").is_file()
    result = run_main("--mode=eval", f"--work_dir={run}", "--test_episodes=3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "eval.json").read_text())["reports"][0]["episodes"] == 3
    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 10:30] = 1
    cv2.imwrite(str(tmp_path / "q.png"), image)
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    result = run_main("--mode=predict", f"--work_dir={run}", f"--query={tmp_path / 'q.png'}",
                      f"--supports={tmp_path / 'q.png'}",
                      f"--support_masks={tmp_path / 'm.png'}")
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_main("--mode=eval", f"--work_dir={run}", "--fold=1")
    assert_one_error_line(result, "--fold=1 conflicts with the run", "trained with --fold=0")
    assert tree_hashes(run, only=pinned) == before
    jobs = (run / "jobs.log").read_text().splitlines()
    assert [line.split()[1] for line in jobs] == ["--mode=train", "--mode=export",
                                                  "--mode=eval", "--mode=predict"]


def test_eval_of_a_directory_without_a_run_is_one_line(tmp_path):
    result = run_main("--mode=export", f"--work_dir={tmp_path / 'nothing'}")
    assert_one_error_line(result, "No trained run in", "no run.json")
    assert not (tmp_path / "nothing").exists()


# One uninterrupted 20-step run serves two tests: a second process tries to enter its
# directory while it trains (the lock test), and its final parameters are the reference of
# the interrupt test (same flags). A separate reference run cost another main.py process.
LONGER = ("--epochs=1", "--steps_per_epoch=20", "--test_episodes=2")


@pytest.fixture(scope="module")
def locked_run(trained, tmp_path_factory):
    """(run dir, first process, its stderr, the second process's result, its seconds)."""
    cache, _ = trained
    run = tmp_path_factory.mktemp("locked") / "run"
    first = start_main(*tiny(cache, run, *LONGER))
    try:
        deadline = time.time() + 300
        while not (run / "run.lock").exists() and first.poll() is None:
            assert time.time() < deadline
            time.sleep(0.2)
        started = time.perf_counter()
        second = run_main(*tiny(cache, run, *LONGER))
        seconds = time.perf_counter() - started
    finally:
        _, err = first.communicate(timeout=600)
    return run, first, err, second, seconds


def test_a_second_process_on_a_locked_directory_fails_at_once(locked_run):
    run, first, err, second, seconds = locked_run
    line = assert_one_error_line(second, f"pid {first.pid}", "in use")
    assert seconds < 60, line
    assert first.returncode == 0, err[-3000:]
    assert not (run / "run.lock").exists()
    assert json.loads((run / "summary.json").read_text())["steps"] == 20


def test_damaged_best_checkpoint_in_eval_is_reported_as_damaged(run_copy):
    cache, run = run_copy
    (data,) = (run / "best").glob("ckpt-*.data-*")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    pinned = ("flags.txt", "run.json", "latest", "best")
    before, dataset = tree_hashes(run, only=pinned), tree_hashes(cache)
    result = run_main("--mode=eval", f"--work_dir={run}")
    line = assert_one_error_line(result, "damaged")
    assert "does not match" not in line
    assert tree_hashes(run, only=pinned) == before and tree_hashes(cache) == dataset


def test_resume_skips_a_damaged_newest_checkpoint(run_copy):
    cache, run = run_copy
    newest = max((run / "latest").glob("ckpt-*.index"),
                 key=lambda p: int(p.name.split("-")[1].split(".")[0]))
    (data,) = (run / "latest").glob(newest.name.replace(".index", ".data-*"))
    content = bytearray(data.read_bytes())
    content[len(content) // 2: len(content) // 2 + 64] = bytes(64)  # not a truncation
    data.write_bytes(bytes(content))
    # The run's record must still match: resume the same experiment.
    result = run_main(*tiny(cache, run))
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"{newest.with_suffix('')}" in output and "cannot be read" in output
    assert "resuming from" in output


def test_a_diverging_update_is_never_saved(trained, tmp_path):
    cache, _ = trained
    run = tmp_path / "run"
    result = run_main(*tiny(cache, run, "--lr=1e30"))
    line = assert_one_error_line(result, "stopped without saving")
    assert "step" in line
    for prefix in [*run.glob("latest/ckpt-*.index"), *run.glob("best/ckpt-*.index")]:
        for value in checkpoint_arrays(prefix.with_suffix("")).values():
            assert np.all(np.isfinite(value)) and np.max(np.abs(value), initial=0) <= 1e6
    assert "--lr=1e+30" in (run / "flags.txt").read_text()


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8_000_000, 8_000_000))


def test_disk_full_during_a_checkpoint_save_leaves_nothing_half_written(trained, tmp_path):
    cache, _ = trained
    run = tmp_path / "run"
    result = run_main(*tiny(cache, run), preexec_fn=_limit_file_size)
    assert_one_error_line(result, "checkpoint")
    leftovers = [p for p in run.rglob("*") if "_temp" in p.name or "staging" in p.name
                 or ".tmp" in p.name]
    assert not leftovers
    assert not list(run.glob("latest/ckpt-*")) and not list(run.glob("best/ckpt-*"))


def _interrupt_when_training(process, run, signums, earlier):
    """Sends `signums` once this process's summary file holds a few steps' scalars.

    `earlier`: the summary files of earlier processes (each writer makes a new one).
    """
    deadline = time.time() + 300
    events = run / "tensorboard"
    while process.poll() is None and time.time() < deadline:
        sizes = [p.stat().st_size for p in events.glob("events.*")
                 if p not in earlier] if events.is_dir() else []
        if sizes and max(sizes) > 400:
            break
        time.sleep(0.1)
    for signum in signums:
        process.send_signal(signum)
        time.sleep(0.05)
    return process.communicate(timeout=600)


def test_interrupted_runs_resume_to_the_uninterrupted_parameters(trained, locked_run, tmp_path):
    cache, _ = trained
    args = LONGER
    reference, first, err, *_ = locked_run
    assert first.returncode == 0, err[-3000:]
    run = tmp_path / "run"
    for signums, code, name in (((signal.SIGINT,), 130, "SIGINT"),
                                ((signal.SIGTERM,), 143, "SIGTERM"),
                                ((signal.SIGINT, signal.SIGINT), 130, "SIGINT")):
        earlier = set(run.glob("tensorboard/events.*"))
        process = start_main(*tiny(cache, run, *args))
        out, err = _interrupt_when_training(process, run, signums, earlier)
        if process.returncode == 0:  # finished before the signal: nothing left to test
            break
        assert process.returncode == code, err[-3000:]
        assert "Traceback" not in err
        if len(signums) == 1:
            assert f"interrupted by {name}" in err and "run the same command again" in err
        assert not (run / "run.lock").exists() or len(signums) == 2
    result = run_main(*tiny(cache, run, *args))
    assert result.returncode == 0, result.stderr[-3000:]
    (final,) = run.glob("latest/ckpt-20.index")
    expected = checkpoint_arrays(reference / "latest" / "ckpt-20")
    got = checkpoint_arrays(final.with_suffix(""))
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
