"""RunLock: one job at a time in a run directory; stale locks of dead jobs are taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from svf_tf.runs.lock import RunLock, RunLockedError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dead_pid():
    """The pid of a process this test started and waited for (so it is not running)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_lock(run_dir, **record):
    run_dir.mkdir(exist_ok=True)
    (run_dir / "run.lock").write_text(json.dumps(record))


def test_acquire_writes_who_holds_it_and_release_removes_it(tmp_path):
    run_dir = tmp_path / "run"
    lock = RunLock(str(run_dir))
    with lock:
        record = json.loads((run_dir / "run.lock").read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert record["command"] == " ".join(sys.argv) and record["started"][:2] == "20"
        assert lock.held and lock.acquire() is lock  # held already: a no-op
    assert not (run_dir / "run.lock").exists() and not lock.held
    lock.release()  # idempotent
    with RunLock(str(run_dir)):  # free again
        pass


def test_a_live_holder_is_refused_with_its_name(tmp_path):
    run_dir = tmp_path / "run"
    with RunLock(str(run_dir)) as holder:
        with pytest.raises(RunLockedError) as raised:
            RunLock(str(run_dir)).acquire()
        message = str(raised.value)
        started = json.loads((run_dir / "run.lock").read_text())["started"]
        assert message == (
            f"{run_dir} is in use by pid {os.getpid()} on host {socket.gethostname()} since "
            f"{started} ({' '.join(sys.argv)}); wait for it to finish, or use another --work_dir")
        assert isinstance(raised.value, ValueError)
        assert holder.held
    assert not (run_dir / "run.lock").exists()


def test_the_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    pid = dead_pid()
    write_lock(run_dir, pid=pid, host=socket.gethostname(), started="2026-01-01T00:00:00+00:00",
               command="python main.py --mode=train")
    lines = []
    with RunLock(str(run_dir), log=lines.append):
        assert json.loads((run_dir / "run.lock").read_text())["pid"] == os.getpid()
    assert lines == [f"took over the stale lock of pid {pid} (not running): {run_dir}/run.lock"]
    assert sorted(os.listdir(run_dir)) == []  # nothing aside left behind


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    write_lock(run_dir, pid=dead_pid(), host="elsewhere.example", started="2026-01-01T00:00:00",
               command="python main.py")
    with pytest.raises(RunLockedError, match=r"on host elsewhere.example since 2026-01-01T00:00:00 "
                                             r"\(python main.py\); .*if that job is dead, delete "
                                             + str(run_dir / "run.lock") + " by hand"):
        RunLock(str(run_dir), log=pytest.fail).acquire()
    assert json.loads((run_dir / "run.lock").read_text())["host"] == "elsewhere.example"


def test_an_unparsable_lock_is_held_for_a_minute_then_stale(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.lock").write_text('{"pid": 12')  # a crash while creating it
    with pytest.raises(RunLockedError, match="is being written by another job"):
        RunLock(str(run_dir), log=pytest.fail).acquire()
    old = time.time() - 120
    os.utime(run_dir / "run.lock", (old, old))
    lines = []
    with RunLock(str(run_dir), log=lines.append):
        assert json.loads((run_dir / "run.lock").read_text())["pid"] == os.getpid()
    assert len(lines) == 1 and lines[0].startswith("took over the stale lock of an unfinished")


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path):
    run_dir = tmp_path / "run"
    lock = RunLock(str(run_dir)).acquire()
    write_lock(run_dir, pid=os.getpid(), host=socket.gethostname(), started="another time",
               command="x")
    lock.release()
    assert json.loads((run_dir / "run.lock").read_text())["started"] == "another time"


def test_a_forked_child_leaves_its_parents_lock(tmp_path):
    run_dir = tmp_path / "run"
    with RunLock(str(run_dir)) as lock:
        pid = os.fork()
        if pid == 0:  # the child: what its atexit would do
            lock.release()
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        assert json.loads((run_dir / "run.lock").read_text())["pid"] == os.getpid()
    assert not (run_dir / "run.lock").exists()


def test_a_file_in_the_way_is_one_line(tmp_path):
    (tmp_path / "run").write_text("not a directory")
    with pytest.raises(OSError) as raised:
        RunLock(str(tmp_path / "run")).acquire()
    message = str(raised.value)
    assert message.startswith(f"could not lock {tmp_path / 'run'} (") and "\n" not in message
    assert "use another --work_dir" in message


HOLDER = textwrap.dedent("""
    import sys
    from svf_tf.runs.lock import RunLock
    RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()  # holds the lock until the parent closes stdin (or kills it)
    """)


def start_holder(run_dir):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "locked\n"
    return process


@pytest.mark.slow
def test_two_real_processes(tmp_path):
    run_dir = tmp_path / "run"
    child = start_holder(run_dir)
    with pytest.raises(RunLockedError, match=f"is in use by pid {child.pid} on host "):
        RunLock(str(run_dir), log=pytest.fail).acquire()
    child.stdin.close()  # the child exits normally: atexit releases its lock
    assert child.wait(timeout=60) == 0
    assert not (run_dir / "run.lock").exists()

    child = start_holder(run_dir)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert json.loads((run_dir / "run.lock").read_text())["pid"] == child.pid  # left behind
    lines = []
    with RunLock(str(run_dir), log=lines.append):
        assert json.loads((run_dir / "run.lock").read_text())["pid"] == os.getpid()
    assert lines == [f"took over the stale lock of pid {child.pid} (not running): "
                     f"{run_dir}/run.lock"]
