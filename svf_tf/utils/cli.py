"""Command-line entry points: one-line errors for user mistakes.

Every script in `scripts/` and `main.py` runs through `run(main)`. Errors a
user can fix (a missing file, a bad value) are raised by library code as
`ValueError`/`FileNotFoundError`/`NotADirectoryError`; here they become a
single `error: ...` line on stderr and exit status 1, with no traceback.
`--debug` shows the traceback instead. Anything else is a bug and keeps its
traceback.
"""

import sys

from absl import app, flags

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               PermissionError)

if "debug" not in flags.FLAGS:
    flags.DEFINE_bool("debug", False, "Show the full traceback when a run fails.")


def one_line(error: BaseException) -> str:
    """The error's message folded onto one line."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def run(main) -> None:
    """`absl.app.run(main)`, turning user errors into a one-line message."""

    def guarded(argv):
        try:
            return main(argv)
        except USER_ERRORS as error:
            if flags.FLAGS.debug:
                raise
            print(f"error: {one_line(error)}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)
