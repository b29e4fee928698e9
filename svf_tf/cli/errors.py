"""Command-line entry points: one-line errors for user mistakes.

Every script in `scripts/` and `main.py` runs through `run(main)`. Errors a
user can fix (a missing file, a bad value) are raised by library code as
`ValueError`/`FileNotFoundError`/`NotADirectoryError`; here they become a
single `error: ...` line on stderr and exit status 1, with no traceback.
Two more kinds are the user's to act on and are shown the same way: a
non-finite training loss (`FloatingPointError`, its message names the step
and the last good checkpoint), and a file that failed to load inside
`tf.data`, which TensorFlow wraps in its own error (the "Failed to load ..."
line the pipeline wrote is kept). Every file-system fault is the user's to
fix as well: any `OSError`, and TensorFlow's own file-system errors (a
checkpoint save on a full disk, a SavedModel into a read-only directory),
become the one line of `svf_tf.cli.paths.describe_os_error`, naming the path
and the fix. `--debug` shows the traceback instead. Anything else is a bug
and keeps its traceback. A flag that cannot be parsed
(an unknown flag, a bad value, a missing flagfile) is one `error: ...` line
too, instead of absl's two-line usage message.
"""

import sys

from absl import app, flags

from svf_tf.cli.paths import describe_os_error, tensorflow_error_as_os_error

USER_ERRORS = (ValueError, FloatingPointError)
DATA_ERROR_MARK = "Failed to load"

if "debug" not in flags.FLAGS:
    flags.DEFINE_bool("debug", False, "Show the full traceback when a run fails.")


def one_line(error: BaseException) -> str:
    """The error's message folded onto one line."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def data_error_line(error: BaseException) -> str | None:
    """The pipeline's "Failed to load <file>: ..." line inside a TensorFlow error, or None."""
    if not type(error).__module__.startswith("tensorflow"):
        return None
    for line in str(error).splitlines():
        if DATA_ERROR_MARK in line:
            return line[line.index(DATA_ERROR_MARK):].strip()
    return None


def file_system_error_line(error: BaseException) -> str | None:
    """One line for a TensorFlow file-system error (full disk, read-only, ...), or None.

    TensorFlow is not imported here: an error can only be TensorFlow's if it
    already is.
    """
    tensorflow = sys.modules.get("tensorflow")
    errors = getattr(tensorflow, "errors", None)
    if errors is None or not isinstance(error, errors.OpError):
        return None
    os_error = tensorflow_error_as_os_error(error)
    return None if os_error is None else describe_os_error(os_error)


def fail(message):
    """Prints `error: message` on stderr and exits with status 1."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def parse_flags(argv):
    """absl's flag parsing, with a parse error as one line.

    A bad value of a setting (svf_tf/config/settings.py) is reported in the
    setting's own words ("--fold=4 is not accepted: give an integer in
    [0, 3]."), without absl's "flag --fold=4:" prefix.
    """
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        cause = error.__context__
        from_setting = type(cause).__name__ == "SettingError"
        fail(one_line(cause if from_setting else error).removeprefix("ERROR:: "))


def run(main) -> None:
    """`absl.app.run(main)`, turning user errors into a one-line message."""

    def guarded(argv):
        try:
            return main(argv)
        except USER_ERRORS as error:
            if flags.FLAGS.debug:
                raise
            fail(one_line(error))
        except OSError as error:
            if flags.FLAGS.debug:
                raise
            fail(describe_os_error(error))
        except Exception as error:
            line = data_error_line(error) or file_system_error_line(error)
            if line is None or flags.FLAGS.debug:
                raise
            fail(line)

    app.run(guarded, flags_parser=parse_flags)
