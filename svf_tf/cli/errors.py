"""Command-line entry points: one-line errors for user mistakes.

Every script in `scripts/` and `main.py` runs through `run(main)`. Errors a
user can fix (a missing file, a bad value) are raised by library code as
`ValueError`/`FileNotFoundError`/`NotADirectoryError`; here they become a
single `error: ...` line on stderr and exit status 1, with no traceback.
Two more kinds are the user's to act on and are shown the same way: a
non-finite training loss (`FloatingPointError`, its message names the step
and the last good checkpoint), and a file that failed to load inside
`tf.data`, which TensorFlow wraps in its own error (the "Failed to load ..."
line the pipeline wrote is kept). `--debug` shows the traceback instead.
Anything else is a bug and keeps its traceback.
"""

import sys

from absl import app, flags

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               PermissionError, FloatingPointError)
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


def run(main) -> None:
    """`absl.app.run(main)`, turning user errors into a one-line message."""

    def fail(message):
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)

    def guarded(argv):
        try:
            return main(argv)
        except USER_ERRORS as error:
            if flags.FLAGS.debug:
                raise
            fail(one_line(error))
        except Exception as error:
            line = data_error_line(error)
            if line is None or flags.FLAGS.debug:
                raise
            fail(line)

    app.run(guarded)
