"""svf_tf.cli.errors: user errors become one line and exit 1; bugs keep their traceback."""

import subprocess
import sys
import textwrap


def run_script(tmp_path, body, *args):
    script = tmp_path / "script.py"
    # TensorFlow is imported only by the bodies that use it (start-up time).
    script.write_text("from svf_tf.cli import errors as cli\n\n"
                      "def main(argv):\n" + textwrap.indent(textwrap.dedent(body), "    ")
                      + "\n\ncli.run(main)\n")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""})


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
