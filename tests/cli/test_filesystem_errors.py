"""File-system faults are one `error:` line naming the path and the fix (svf_tf.cli.paths).

Read-only places are simulated with paths under /sys (sysfs refuses to
create anything, even for root, with EPERM or EACCES) and, when not root,
with chmod; a full disk with RLIMIT_FSIZE in the child (writes then fail
with EFBIG).
"""

import errno
import hashlib
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

from svf_tf import atomic_files
from svf_tf.cli import paths
from svf_tf.data.cache import check_cache_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
MAIN = ROOT / "main.py"
HAS_SYSFS = os.path.isdir("/sys/kernel")
needs_sysfs = pytest.mark.skipif(not HAS_SYSFS, reason="needs Linux's /sys to refuse writes")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def tree(root):
    """{relative path: sha256 of the content, or "dir"} of everything under `root`."""
    root = pathlib.Path(root)
    if not root.exists():
        return None
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    return {str(p.relative_to(root)): "dir" if p.is_dir() else
            hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))}


# ensure_writable_dir / check_output_file


def test_a_new_directory_is_created_and_nothing_else_is_left(tmp_path):
    target = tmp_path / "a" / "b"
    assert paths.ensure_writable_dir(str(target), "--work_dir") == str(target)
    assert target.is_dir() and list(target.iterdir()) == []


def test_create_false_checks_without_creating_anything(tmp_path):
    paths.ensure_writable_dir(str(tmp_path / "a" / "b"), "--work_dir", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_a_directory_is_wanted_is_one_line(tmp_path):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(NotADirectoryError) as info:
        paths.ensure_writable_dir(str(tmp_path / "x"), "--work_dir")
    assert str(info.value) == (f"--work_dir='{tmp_path}/x' is a file, not a directory: give a "
                               "directory path.")
    with pytest.raises(NotADirectoryError) as info:
        paths.ensure_writable_dir(str(tmp_path / "x" / "run" / "a"), "--work_dir", create=False)
    assert str(info.value) == (f"--work_dir='{tmp_path}/x/run/a' cannot be created: "
                               f"'{tmp_path}/x' is a file, not a directory: give a path whose "
                               "parents are directories.")
    assert (tmp_path / "x").read_text() == "keep"


@needs_sysfs
@pytest.mark.parametrize("create", [True, False])
def test_a_directory_that_cannot_be_written_is_one_line(create):
    with pytest.raises(OSError) as info:
        paths.ensure_writable_dir("/sys/svf_run/a", "--work_dir", create=create,
                                  fix="give another --work_dir")
    message = str(info.value)
    assert message.startswith("--work_dir='/sys/svf_run/a' cannot be created: ")
    assert ("operation not permitted on '/sys/svf_run'" in message
            or "permission denied for '/sys'" in message), message
    assert message.endswith(": give another --work_dir.") and "\n" not in message


@pytest.mark.skipif(IS_ROOT, reason="permission bits do not stop root")
def test_a_read_only_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OSError, match=r"--work_dir='.*/locked' cannot be written: "
                                          r"permission denied for '.*/locked': "):
            paths.ensure_writable_dir(str(locked), "--work_dir")
    finally:
        locked.chmod(0o755)


def test_an_output_file_is_checked_without_being_written(tmp_path):
    out = tmp_path / "new" / "results.json"
    assert paths.check_output_file(str(out), "--out") == str(out)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(IsADirectoryError, match=r"^--out='.*' is a directory, not a file: give "
                                                r"a file path\.$"):
        paths.check_output_file(str(tmp_path), "--out")
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match=r"'.*/f' is a file, not a directory"):
        paths.check_output_file(str(tmp_path / "f" / "results.json"), "--out")


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "out.json"
    atomic_files.write_file_atomically(str(target), "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["out.json"]
    (tmp_path / "dir.json").mkdir()  # a rename onto a directory fails
    with pytest.raises(OSError):
        atomic_files.write_file_atomically(str(tmp_path / "dir.json"), "x")
    assert sorted(os.listdir(tmp_path)) == ["dir.json", "out.json"]


def test_a_staged_directory_replaces_the_old_one_or_leaves_it_untouched(tmp_path):
    target = tmp_path / "saved_model"
    with atomic_files.staged_directory(str(target)) as staging:
        pathlib.Path(staging, "a.pb").write_text("first")
    assert tree(target) == tree_of({"a.pb": "first"}) and os.listdir(tmp_path) == ["saved_model"]
    with pytest.raises(OSError), atomic_files.staged_directory(str(target)) as staging:
        pathlib.Path(staging, "a.pb").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", staging)
    assert tree(target) == tree_of({"a.pb": "first"}) and os.listdir(tmp_path) == ["saved_model"]
    with atomic_files.staged_directory(str(target)) as staging:
        pathlib.Path(staging, "b.pb").write_text("second")
    assert tree(target) == tree_of({"b.pb": "second"}) and os.listdir(tmp_path) == ["saved_model"]


def tree_of(files):
    return {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}


# describe_os_error


@pytest.mark.parametrize("code,words", [
    (errno.ENOSPC, "No space left on the device of '{path}': free disk space"),
    (errno.EDQUOT, "Disk quota exceeded writing '{path}': free space within your quota"),
    (errno.EFBIG, "File too large: '{path}' reached the file-size limit (ulimit -f)"),
    (errno.EROFS, "'{path}' is on a read-only file system: give a path on a writable file "
                  "system."),
    (errno.EACCES, "Permission denied for '{path}': give a path you have access to"),
    (errno.EPERM, "Operation not permitted on '{path}': give a path you may write to"),
    (errno.EISDIR, "'{path}' is a directory, not a file: give a file path."),
    (errno.EEXIST, "'{path}' already exists: remove it or give another path."),
    (errno.ENOTDIR, "A part of '{path}' is not a directory: give a path whose parents are "
                    "directories."),
    (errno.EXDEV, "Invalid cross-device link: '{path}': check the path"),
])
def test_each_errno_is_one_line_with_the_path_and_a_fix(code, words):
    path = "/no/such/place/ckpt-3.index"
    message = paths.describe_os_error(OSError(code, os.strerror(code), path))
    assert message.startswith(words.format(path=path)) and "\n" not in message


def test_real_os_errors_name_the_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OSError) as info:
        os.makedirs(tmp_path / "f")
    assert paths.describe_os_error(info.value) == (
        f"'{tmp_path}/f' is a file, not a directory: give a directory path.")
    with pytest.raises(OSError) as info:
        open(tmp_path / "f" / "x.json", "w")
    assert paths.describe_os_error(info.value) == (
        f"'{tmp_path}/f' is a file, not a directory (in '{tmp_path}/f/x.json'): give a path whose "
        "parents are directories.")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_write_that_names_no_file_is_traced_to_the_open_file():
    def write(path):
        with open(path, "w") as f:
            f.write("x")
            f.flush()  # /dev/full: every write fails with ENOSPC, as on a full disk
    with pytest.raises(OSError) as info:
        write("/dev/full")
    assert info.value.errno == errno.ENOSPC and info.value.filename is None
    assert paths.describe_os_error(info.value).startswith(
        "No space left on the device of '/dev/full': free disk space")


def test_h5py_messages_give_the_path():
    error = PermissionError(13, "Unable to synchronously create file (unable to open file: name "
                                "= '/sys/x.weights.h5', errno = 13, error message = 'Permission "
                                "denied', flags = 13, o_flags = 242)")
    assert paths.describe_os_error(error).startswith("Permission denied for '/sys/x.weights.h5'")


def test_a_later_error_names_the_flag_of_its_directory(tmp_path):
    run = paths.ensure_writable_dir(str(tmp_path / "run"), "--work_dir")
    error = OSError(errno.ENOSPC, "No space left on device", os.path.join(run, "best", "c.index"))
    assert paths.describe_os_error(error) == (
        f"No space left on the device of '{run}/best/c.index' (--work_dir='{run}'): free disk "
        "space or write to another disk, then run again.")


def test_svf_tf_messages_are_kept():
    error = FileNotFoundError("--data_root='/x' does not exist: point it at the pascal root.")
    assert paths.describe_os_error(error) == str(error)


# TensorFlow's file-system errors (messages as TensorFlow 2.21 words them)


@pytest.mark.parametrize("error,expected", [
    (tf.errors.PermissionDeniedError(None, None, "/sys/svf_x; Operation not permitted"),
     (errno.EPERM, "/sys/svf_x")),
    (tf.errors.FailedPreconditionError(None, None, "/tmp/afile is not a directory"),
     (errno.ENOTDIR, "/tmp/afile")),
    (tf.errors.OutOfRangeError(
        None, None, "{{function_node __wrapped__SaveV2_dtypes_3_device_/job:localhost/replica:0/"
        "task:0/device:CPU:0}} /runs/x/ckpt-4_temp/part-00000-of-00001.data-00000-of-00001."
        "tempstate12220005296383717513; File too large [Op:SaveV2]"),
     (errno.EFBIG, "/runs/x/ckpt-4_temp/part-00000-of-00001.data-00000-of-00001")),
    (tf.errors.ResourceExhaustedError(None, None, "/runs/x/c.index; No space left on device"),
     (errno.ENOSPC, "/runs/x/c.index")),
    (tf.errors.UnknownError(None, None, "/ro/run; Read-only file system"),
     (errno.EROFS, "/ro/run")),
])
def test_tensorflow_file_system_errors_become_os_errors(error, expected):
    os_error = paths.tensorflow_error_as_os_error(error)
    assert (os_error.errno, os_error.filename) == expected


def test_out_of_memory_is_not_a_file_system_error():
    error = tf.errors.ResourceExhaustedError(
        None, None, "OOM when allocating tensor with shape[8,2048,60,60] and type float")
    assert paths.tensorflow_error_as_os_error(error) is None


# The cache directory


def test_a_cache_that_cannot_be_written_names_where_it_came_from(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    monkeypatch.delenv("SVF_TF_CACHE", raising=False)
    fix = "set SVF_TF_CACHE or --cache_dir to a writable directory."
    with pytest.raises(NotADirectoryError) as info:
        check_cache_dir(str(tmp_path / "f"))
    assert str(info.value) == f"--cache_dir='{tmp_path}/f' is a file, not a directory: {fix}"
    monkeypatch.setenv("SVF_TF_CACHE", str(tmp_path / "f" / "cache"))
    with pytest.raises(NotADirectoryError) as info:
        check_cache_dir()
    assert str(info.value) == (f"SVF_TF_CACHE='{tmp_path}/f/cache' cannot be created: "
                               f"'{tmp_path}/f' is a file, not a directory: {fix}")
    monkeypatch.delenv("SVF_TF_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "f"))
    with pytest.raises(NotADirectoryError) as info:
        check_cache_dir()
    assert str(info.value) == (
        f"The default cache (HOME='{tmp_path}/f'): '{tmp_path}/f/.cache/svf_tf' cannot be "
        f"created: '{tmp_path}/f' is a file, not a directory: {fix}")
    assert check_cache_dir(str(tmp_path / "ok")) == str(tmp_path / "ok")
    assert not (tmp_path / "ok").exists()  # checked, not created


# The slow tier: the commands, as a user runs them.


def run(args, env_extra=None, preexec_fn=None, cwd=ROOT):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("TF_CPP") and key != "SVF_TF_CACHE"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600, preexec_fn=preexec_fn)


def assert_one_error_line(result, *words):
    """Exit 1, stderr exactly one `error:` line holding `words`, no traceback."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def disk_full(limit_bytes):
    """A preexec_fn: files of the child cannot grow past `limit_bytes` (writes fail: EFBIG)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit


@pytest.fixture
def place(tmp_path):
    """tmp_path with a file `afile`, and a function giving its hash tree."""
    (tmp_path / "afile").write_text("a file, not a directory")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("script,args,words", [
    ("benchmark.py", ["--out={place}/afile/b.json"], ["--out=", "afile' is a file"]),
    ("benchmark.py", ["--out={place}"], ["--out=", "is a directory, not a file"]),
    ("synthetic_learnability.py", ["--out={place}/afile/l.json"], ["--out=", "is a file"]),
    ("convert_torch_checkpoint.py", ["--checkpoint={place}/m.pth", "--target=vgg16_bn",
                                     "--output={place}/afile/w.weights.h5"],
     ["--output=", "is a file"]),
    ("convert_torch_checkpoint.py", ["--checkpoint={place}/m.pth", "--target=pspnet",
                                     "--output={place}/w.weights.h5",
                                     "--backbone_output={place}/afile/b.weights.h5"],
     ["--backbone_output=", "cannot be created", "afile' is a file"]),
    ("make_base_annotations.py", ["--synthetic", "--cache_dir={place}/cache",
                                  "--output_dir={place}/afile"], ["--output_dir=", "is a file"]),
    ("make_lists.py", ["--synthetic", "--cache_dir={place}/afile"],
     ["--cache_dir=", "is a file", "set SVF_TF_CACHE or --cache_dir to a writable directory"]),
    ("synthetic_learnability.py", ["--cache_dir={place}/afile/c"],
     ["--cache_dir=", "afile' is a file"]),
])
def test_a_script_with_a_bad_output_path_is_one_line_and_writes_nothing(place, script, args,
                                                                        words):
    before = tree(place)
    result = run([SCRIPTS / script, *(a.format(place=place) for a in args)])
    assert_one_error_line(result, *words)
    assert tree(place) == before


@pytest.mark.slow
@needs_sysfs
@pytest.mark.parametrize("script,args,words", [
    ("benchmark.py", ["--out=/sys/svf_bench.json"], ["--out='/sys/svf_bench.json'"]),
    ("make_base_annotations.py", ["--synthetic", "--cache_dir={place}/cache",
                                  "--output_dir=/sys/svf_base"], ["--output_dir='/sys/svf_base'"]),
    ("prepare_pascal.py", ["--voc_root=/sys/kernel"], ["/sys/kernel", "--voc_root"]),
    ("prepare_coco.py", ["--coco_root=/sys/kernel"], ["/sys/kernel", "--coco_root"]),
])
def test_a_script_writing_to_a_read_only_place_is_one_line(place, script, args, words):
    before = tree(place)
    result = run([SCRIPTS / script, *(a.format(place=place) for a in args)])
    assert_one_error_line(result, *words)
    assert tree(place) == before


@pytest.fixture(scope="module")
def ready_cache(tmp_path_factory, synthetic_cache):
    """A cache of this file's holding the synthetic dataset and its fold-0 lists.

    Made once (a copy and a make_lists.py process): its users only read it, and the
    full-disk test checks that its script left it unchanged.
    """
    cache = tmp_path_factory.mktemp("ready") / "cache"
    shutil.copytree(synthetic_cache, cache)
    result = run([SCRIPTS / "make_lists.py", "--synthetic", f"--cache_dir={cache}"])
    assert result.returncode == 0, result.stderr
    return cache


@pytest.mark.slow
def test_a_full_disk_while_a_script_writes_its_results_is_one_line_and_no_half_file(
        tmp_path, ready_cache):
    out = tmp_path / "results" / "learnability.json"
    out.parent.mkdir()
    before = tree(ready_cache)
    result = run([SCRIPTS / "synthetic_learnability.py", "--steps=1", "--episodes=2",
                  "--size=17", "--batch_size=1", f"--cache_dir={ready_cache}", f"--out={out}"],
                 preexec_fn=disk_full(200))
    line = assert_one_error_line(result, "File too large", str(out), "raise the limit")
    assert line.startswith(f"error: File too large: '{out}'")
    assert os.listdir(out.parent) == []  # no half-written file, no temporary left
    assert tree(ready_cache) == before


@pytest.mark.slow
@pytest.mark.parametrize("home", ["afile", "/sys/svf_home"])
def test_a_home_that_cannot_be_written_is_one_line_naming_home(place, home):
    if home.startswith("/sys") and not HAS_SYSFS:
        pytest.skip("needs Linux's /sys")
    home = home if home.startswith("/") else str(place / home)
    before = tree(place)
    result = run([SCRIPTS / "make_lists.py", "--synthetic"], {"HOME": home})
    assert_one_error_line(result, f"HOME='{home}'", "set SVF_TF_CACHE or --cache_dir")
    assert tree(place) == before


@pytest.mark.slow
def test_a_home_that_is_a_file_does_not_stop_a_script_given_a_cache(place, ready_cache):
    result = run([SCRIPTS / "make_lists.py", "--synthetic", f"--cache_dir={ready_cache}",
                  "--json"], {"HOME": str(place / "afile")})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (place / "afile").read_text() == "a file, not a directory"


# main.py: the run directory and the cache are checked before anything is written.

TINY_TRAIN = ["--mode=train", "--synthetic", "--backbone=vgg16", "--train_size=33",
              "--test_size=33", "--epochs=1", "--steps_per_epoch=2", "--batch_size=2",
              "--test_episodes=4", "--svf_rank_multiple=1"]


@pytest.mark.slow
@pytest.mark.parametrize("args,words", [
    (["--work_dir={place}/afile", "--cache_dir={cache}"],
     ["--work_dir='{place}/afile' is a file, not a directory"]),
    (["--work_dir={place}/afile/run", "--cache_dir={cache}"],
     ["--work_dir='{place}/afile/run'", "'{place}/afile' is a file, not a directory"]),
    (["--work_dir={place}/run", "--cache_dir={place}/afile"],
     ["--cache_dir='{place}/afile' is a file", "set SVF_TF_CACHE or --cache_dir"]),
    (["--work_dir=/sys/svf_run", "--cache_dir={cache}"], ["--work_dir='/sys/svf_run'"]),
])
def test_main_with_a_bad_work_dir_or_cache_is_one_line_and_writes_nothing(place, synthetic_cache,
                                                                          args, words):
    if "/sys/" in " ".join(args) and not HAS_SYSFS:
        pytest.skip("needs Linux's /sys")
    values = dict(place=place, cache=synthetic_cache)
    before, cache_before = tree(place), tree(synthetic_cache)
    result = run([MAIN, *TINY_TRAIN, *(a.format(**values) for a in args)])
    assert_one_error_line(result, *(w.format(**values) for w in words))
    assert tree(place) == before and tree(synthetic_cache) == cache_before


@pytest.mark.slow
def test_main_with_a_home_that_is_a_file_is_one_line_naming_home(place):
    before = tree(place)
    result = run([MAIN, *TINY_TRAIN, f"--work_dir={place}/run"],
                 {"HOME": str(place / "afile")})
    assert_one_error_line(result, f"HOME='{place}/afile'", "set SVF_TF_CACHE or --cache_dir")
    assert tree(place) == before


@pytest.mark.slow
@pytest.mark.parametrize("home", ["afile", "/sys/svf_home"])
def test_main_trains_with_a_home_it_cannot_write_given_a_cache(place, synthetic_cache, home):
    # Keras falls back from ~/.keras to /tmp/.keras; our cache is --cache_dir.
    if home.startswith("/sys") and not HAS_SYSFS:
        pytest.skip("needs Linux's /sys")
    home = home if home.startswith("/") else str(place / home)
    result = run([MAIN, *TINY_TRAIN, f"--work_dir={place}/run",
                  f"--cache_dir={synthetic_cache}"], {"HOME": home})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.strip() == f"work directory: {place}/run"
    assert (place / "run" / "summary.json").is_file()
    assert (place / "afile").read_text() == "a file, not a directory"
