"""svf_tf.cli.errors: user errors become one line and exit 1; bugs keep their traceback."""

import subprocess
import sys
import textwrap

import pytest
from absl import flags

from svf_tf.cli import errors as cli


def run_in_process(monkeypatch, capsys, main, *args):
    """`cli.run(main)` as a script would call it: (the exception or exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["script.py", *args])
    try:
        cli.run(main)
    except SystemExit as exit_:
        outcome = exit_.code
    except Exception as error:  # what a bug or --debug lets through
        outcome = error
    finally:
        flags.FLAGS.unparse_flags()  # --debug must not leak into later tests
    return outcome, capsys.readouterr().err


def _raise(error):
    def main(argv):
        raise error
    return main


def _failing_tf_data(argv):
    import tensorflow as tf

    def load(x):
        raise ValueError("Failed to load JPEGImages/a.jpg: truncated; re-run the script")
    data = tf.data.Dataset.range(1).map(lambda x: tf.numpy_function(load, [x], tf.int64))
    next(iter(data))


def test_user_errors_tf_data_load_errors_and_bugs_in_process(monkeypatch, capsys):
    code, err = run_in_process(monkeypatch, capsys,
                               _raise(FloatingPointError("The loss became nan\n at step 4")))
    assert code == 1 and err == "error: The loss became nan at step 4\n"
    code, err = run_in_process(monkeypatch, capsys, _failing_tf_data)
    assert code == 1 and err.splitlines()[-1] == (
        "error: Failed to load JPEGImages/a.jpg: truncated; re-run the script")
    error, _ = run_in_process(monkeypatch, capsys, _failing_tf_data, "--debug")
    assert "Failed to load JPEGImages/a.jpg" in str(error)
    error, err = run_in_process(monkeypatch, capsys, _raise(KeyError("a bug")))
    assert isinstance(error, KeyError) and "error:" not in err


def run_script(tmp_path, body, *args):
    script = tmp_path / "script.py"
    # TensorFlow is imported only by the bodies that use it (start-up time).
    script.write_text("from svf_tf.cli import errors as cli\n\n"
                      "def main(argv):\n" + textwrap.indent(textwrap.dedent(body), "    ")
                      + "\n\ncli.run(main)\n")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""})


@pytest.mark.slow  # subprocesses; the in-process version above is in the default run
def test_user_errors_tf_data_load_errors_and_bugs(tmp_path):
    result = run_script(tmp_path, "raise FloatingPointError('The loss became nan at step 4')")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: The loss became nan at step 4"
    assert "Traceback" not in result.stderr

    # A load error raised inside tf.data reaches the caller wrapped by TensorFlow.
    body = """
    import tensorflow as tf

    def load(x):
        raise ValueError('Failed to load JPEGImages/a.jpg: truncated; re-run the script')
    data = tf.data.Dataset.range(1).map(lambda x: tf.numpy_function(load, [x], tf.int64))
    next(iter(data))
    """
    result = run_script(tmp_path, body)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Failed to load JPEGImages/a.jpg: truncated; re-run the script")
    result = run_script(tmp_path, body, "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr

    result = run_script(tmp_path, "raise KeyError('a bug')")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_file_system_errors_are_one_line_in_process(monkeypatch, capsys, tmp_path):
    import errno

    import tensorflow as tf

    (tmp_path / "afile").write_text("")
    code, err = run_in_process(monkeypatch, capsys, _raise(
        FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "afile"))))
    assert code == 1 and err == (f"error: '{tmp_path}/afile' is a file, not a directory: give a "
                                 "directory path.\n")
    code, err = run_in_process(monkeypatch, capsys, _raise(tf.errors.OutOfRangeError(
        None, None, "{{function_node __wrapped__SaveV2}} /runs/x/ckpt-4_temp/part-00000-of-00001"
        ".data-00000-of-00001.tempstate1222; File too large [Op:SaveV2]")))
    assert code == 1 and err == (
        "error: File too large: '/runs/x/ckpt-4_temp/part-00000-of-00001.data-00000-of-00001' "
        "reached the file-size limit (ulimit -f) or the file system's largest file: raise the "
        "limit or write to another file system, then run again.\n")
    # Out of memory is not a file-system error: it keeps its traceback.
    error, err = run_in_process(monkeypatch, capsys, _raise(tf.errors.ResourceExhaustedError(
        None, None, "OOM when allocating tensor with shape[8,2048,60,60]")))
    assert isinstance(error, tf.errors.ResourceExhaustedError) and "error:" not in err
    error, _ = run_in_process(monkeypatch, capsys, _raise(PermissionError(13, "denied", "/x")),
                              "--debug")
    assert isinstance(error, PermissionError)


@pytest.mark.slow
def test_file_system_errors_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    result = run_script(tmp_path, f"open({str(tmp_path / 'afile' / 'x.json')!r}, 'w')")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: '{tmp_path}/afile' is a file, not a directory (in '{tmp_path}/afile/x.json'): "
        "give a path whose parents are directories."]
    body = f"""
    import tensorflow as tf

    tf.train.Checkpoint(v=tf.Variable(1.0)).save({str(tmp_path / 'afile' / 'ckpt')!r})
    """
    result = run_script(tmp_path, body)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: '{tmp_path}/afile' is a file, not a directory: give a directory path.")
