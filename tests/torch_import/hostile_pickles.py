"""Checkpoint payloads that run code when unpickled, for the converter's refusal tests.

Each payload calls one callable a hostile `.pth` may use, with arguments that
make it create a marker file, so a test can tell whether anything ran.
"""

import builtins
import os
import shlex
import subprocess
import sys


def marker_code(marker):
    """Python code that creates the file `marker`."""
    return f"open({str(marker)!r}, 'w').close()"


# The callable by the name the converter's error must give, and its arguments.
HOSTILE_CALLS = {
    "os.system": lambda marker: (os.system, (shlex.join(
        [sys.executable, "-c", marker_code(marker)]),)),
    "subprocess.run": lambda marker: (subprocess.run, (
        [sys.executable, "-c", marker_code(marker)],)),
    "subprocess.check_call": lambda marker: (subprocess.check_call, (
        [sys.executable, "-c", marker_code(marker)],)),
    "builtins.exec": lambda marker: (builtins.exec, (marker_code(marker),)),
    "builtins.eval": lambda marker: (builtins.eval, (marker_code(marker),)),
}


class HostileCall:
    """An object whose unpickling calls `HOSTILE_CALLS[name]`, creating `marker`."""

    def __init__(self, name, marker):
        self.name, self.marker = name, marker

    def __reduce__(self):
        return HOSTILE_CALLS[self.name](self.marker)
