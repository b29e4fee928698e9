"""svf_tf.cli.startup: no TensorFlow C++ log line reaches a user unless --debug/--verbosity asks."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from svf_tf.cli import startup

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Lines TensorFlow 2.21 printed on this project's machines, verbatim but for the numbers.
TENSORFLOW_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796153599.296472   26387 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796153604.442908   26415 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other "
    "operations, rebuild TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796153607.889248   26415 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "W0000 00:00:1796153607.889248   26415 gpu_device.cc:2342] Cannot dlopen some GPU libraries.",
]
#: What the tests look for on a quiet command's stderr (the brief's four marks).
TENSORFLOW_LOG = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuInit", re.MULTILINE)


def test_tensorflow_log_lines_are_noise_and_other_lines_are_not():
    assert all(startup.is_noise(line) for line in TENSORFLOW_LINES)
    for line in ("error: --fold=4 is not accepted: give an integer in [0, 3].",
                 "/x/y.py:3: UserWarning: something the user should see",
                 "F0000 00:00:1796153607.889248   26415 cpu_feature_guard.cc:57] The TensorFlow "
                 "library was compiled to use AVX instructions, but these aren't available",
                 "Traceback (most recent call last):", "I0000 is not a log prefix"):
        assert not startup.is_noise(line), line


@pytest.mark.parametrize("argv,wanted", [
    ([], False),
    (["--mode=train"], False),
    (["--debug"], True),
    (["--debug=true"], True),
    (["--debug", "--nodebug"], False),
    (["--debug=false"], False),
    (["--verbosity=1"], True),
    (["--verbosity=0"], True),
    (["--verbosity=-1"], False),
    (["-v", "1"], True),
    (["-v=2"], True),
    (["--verbosity", "-2"], False),
    (["--", "--debug"], False),
])
def test_the_command_line_asks_for_tensorflow_logs_with_debug_or_verbosity(argv, wanted):
    assert startup.wants_tensorflow_logs(["main.py", *argv]) is wanted


def test_debug_in_a_flagfile_asks_too(tmp_path):
    inner = tmp_path / "inner.cfg"
    inner.write_text("# a comment\n--verbosity=1\n")
    outer = tmp_path / "outer.cfg"
    outer.write_text(f"--mode=train\n--flagfile={inner}\n")
    assert startup.wants_tensorflow_logs(["main.py", f"--flagfile={outer}"])
    assert not startup.wants_tensorflow_logs(["main.py", f"--flagfile={tmp_path}/missing.cfg"])


def test_filtered_stderr_drops_tensorflow_lines_and_keeps_the_rest(capfd):
    with startup.filtered_stderr():
        # What the C++ layer writes goes straight to file descriptor 2.
        os.write(2, ("\n".join(TENSORFLOW_LINES[:3]) + "\n").encode())
        print("a Python warning the user should see", file=sys.stderr)
        os.write(2, (TENSORFLOW_LINES[4] + "\nF0000 00:00:1.2 3 x.cc:1] fatal\n").encode())
    assert capfd.readouterr().err.splitlines() == [
        "a Python warning the user should see", "F0000 00:00:1.2 3 x.cc:1] fatal"]


def test_filtered_stderr_restores_descriptor_2_when_the_import_fails(capfd):
    with pytest.raises(ImportError), startup.filtered_stderr():
        os.write(2, b"real cause of the failure\n")
        raise ImportError("no module")
    os.write(2, b"after\n")
    assert capfd.readouterr().err.splitlines() == ["real cause of the failure", "after"]


def test_quiet_start_sets_the_log_level_and_does_not_import_tensorflow(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    # TensorFlow is already loaded in the test process: no hook is installed.
    assert startup.quiet_start(["main.py", "--mode=train"]) is True
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert startup._HOOK not in sys.meta_path
    assert startup.quiet_start(["main.py", "--debug"]) is False
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


# The slow tier: real commands in subprocesses.


def run(args, env_extra=None, **kwargs):
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600, **kwargs)


SCRIPT = """
from svf_tf.cli import startup

startup.quiet_start()

from svf_tf.cli import errors as cli


def main(argv):
    import keras
    import tensorflow as tf

    print(float(tf.reduce_sum(tf.ones([3]))), len(tf.config.list_logical_devices()) > 0)
    layer = keras.layers.Dense(2)
    print(tuple(layer(tf.ones([1, 4])).shape))


cli.run(main)
"""


@pytest.mark.slow
@pytest.mark.parametrize("level", [None, "3", "0"])
def test_a_command_that_runs_tensorflow_ops_prints_no_tensorflow_line(tmp_path, level):
    script = tmp_path / "command.py"
    script.write_text(SCRIPT)
    result = run([script], None if level is None else {"TF_CPP_MIN_LOG_LEVEL": level})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3.0", "True", "(1,", "2)"]
    assert result.stderr == ""


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--debug", "--verbosity=1"])
def test_debug_or_verbosity_shows_tensorflow_lines(tmp_path, flag):
    script = tmp_path / "command.py"
    script.write_text(SCRIPT)
    result = run([script, flag], {"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert TENSORFLOW_LOG.search(result.stderr), result.stderr


@pytest.fixture
def learnability_cache(tmp_path, synthetic_cache):
    """A private copy of the session's synthetic dataset (the probe writes its lists there)."""
    cache = tmp_path / "cache"
    shutil.copytree(os.path.join(synthetic_cache, "synthetic_pascal"),
                    cache / "synthetic_pascal")
    return cache


@pytest.mark.slow
@pytest.mark.parametrize("env_extra,flag", [(None, None), ({"TF_CPP_MIN_LOG_LEVEL": "3"}, None),
                                            ({"TF_CPP_MIN_LOG_LEVEL": "3"}, "--verbosity=1")])
def test_a_real_script_training_and_evaluating_is_quiet_unless_asked(learnability_cache, env_extra,
                                                                     flag):
    args = [ROOT / "scripts" / "synthetic_learnability.py", "--steps=1", "--episodes=2",
            "--size=17", "--batch_size=1", f"--cache_dir={learnability_cache}"]
    result = run(args + ([flag] if flag else []), env_extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "probe, trained" in result.stdout
    if flag:
        assert TENSORFLOW_LOG.search(result.stderr), result.stderr
    else:
        assert not TENSORFLOW_LOG.search(result.stderr), result.stderr


@pytest.mark.slow
def test_main_py_fails_fast_without_loading_tensorflow():
    result = run(["-X", "importtime", ROOT / "main.py", "--fold=9"])
    assert result.returncode == 1
    imported = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "svf_tf.cli.startup" in imported and "absl.flags" in imported
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]
    errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert len(errors) == 1 and errors[0].startswith("error: --fold=9 is not accepted")
