"""Quiet start-up: no TensorFlow C++ log line reaches the user unless asked for.

TensorFlow's C++ layer prints on every start: "WARNING: All log messages
before absl::InitializeLog() is called are written to STDERR" and "I0000 ...
port.cc] oneDNN custom operations are on ..." (once per copy of absl it
loads, before `TF_CPP_MIN_LOG_LEVEL` is read), and, with
`TF_CPP_MIN_LOG_LEVEL` below 3, "E0000 ... failed call to cuInit: ... CUDA
error" on a machine that has CUDA libraries and no GPU. A user reads an "E"
line as an error. `quiet_start()`, called first thing by main.py and each
script, does two things unless `--debug` or absl's `--verbosity` (0 = info
or more) asks for TensorFlow's logs:

1. it sets `TF_CPP_MIN_LOG_LEVEL=3` (TensorFlow 2.21 also reads
   `TF_CPP_MAX_VLOG_LEVEL` and `TF_CPP_VMODULE`, which only add lines; they
   are left alone), which silences everything the C++ layer logs once absl
   logging is initialised;
2. for the lines printed before that, it captures file descriptor 2 around
   the first `import tensorflow`, wherever it happens (a `sys.meta_path`
   hook, so a command that fails before it needs TensorFlow never loads
   it), and around the first device query (`list_physical_devices`, where
   CUDA is probed); the captured text is written back without the log lines
   (`is_noise`): a Python warning, or any other line, still shows. Should
   TensorFlow abort while loading (a fatal "F" line), Python's fault handler
   still prints where on the real stderr; `--debug` shows TensorFlow's words.

TensorFlow's Python logger ("tensorflow", whose warnings absl prints in the
same "W1201 ..." form: AutoGraph's "could not transform", retracing notes) is
set to errors only as well. A `TF_CPP_MIN_LOG_LEVEL` of the user's own is
overridden: the flags are the one way to ask for the logs.

`TF_ENABLE_ONEDNN_OPTS` is not touched (it changes numerics and speed), and
no device is hidden. With `--debug` or `--verbosity=0` (or more),
`TF_CPP_MIN_LOG_LEVEL` is set to 0 and nothing is captured: every line shows.
"""

import contextlib
import faulthandler
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile

#: The lines of TensorFlow's C++ layer that never reach a user of a quiet command.
NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+ +\d+ [^\]\s]+\] "  # absl's log prefix; F (fatal) is kept
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler")

_TRUE = ("", "true", "t", "1", "yes", "y")


def is_noise(line: str) -> bool:
    """Whether `line` is one of TensorFlow's C++ log lines (info, warning, error)."""
    return NOISE.match(line) is not None


def _flag_arguments(argv, depth=0):
    """`argv`'s arguments, with the contents of --flagfile= files spliced in (as absl does)."""
    for argument in argv:
        if argument.startswith(("--flagfile=", "-flagfile=")) and depth < 5:
            try:
                with open(argument.split("=", 1)[1], encoding="utf-8") as f:
                    lines = [line.strip() for line in f]
            except (OSError, UnicodeDecodeError):
                continue  # absl reports an unreadable flagfile itself
            yield from _flag_arguments([line for line in lines
                                        if line and not line.startswith(("#", "//"))], depth + 1)
        else:
            yield argument


def wants_tensorflow_logs(argv) -> bool:
    """Whether the command line asks for TensorFlow's logs: --debug, or --verbosity >= 0.

    Read before absl parses the flags (TensorFlow may load before that);
    flagfiles are read too. absl's --verbosity (-v) defaults to -1 (warning);
    0 is info, 1 debug.
    """
    arguments = list(_flag_arguments(argv[1:]))
    wanted = False
    for index, argument in enumerate(arguments):
        if argument == "--":
            break
        name, equals, value = argument.lstrip("-").partition("=")
        if name == "debug":
            wanted = value.lower() in _TRUE
        elif name == "nodebug":
            wanted = False
        elif name in ("verbosity", "v"):
            if not equals and index + 1 < len(arguments):
                value = arguments[index + 1]
            with contextlib.suppress(ValueError):
                wanted = int(value) >= 0
    return wanted


def _open_capture():
    """A file to capture file descriptor 2 into: in memory if possible, else a temporary file."""
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):
            return os.fdopen(os.memfd_create("svf_tf_stderr"), "w+b")
    return tempfile.TemporaryFile()


@contextlib.contextmanager
def filtered_stderr():
    """Captures file descriptor 2 (C++ and Python alike) and writes back all but `is_noise`.

    Does nothing if descriptor 2 is closed or no capture file can be made
    (e.g. no writable temporary directory and no memfd).
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        capture = _open_capture()
    except OSError:
        os.close(saved)
        yield
        return
    with capture:
        _flush_stderr()
        os.dup2(capture.fileno(), 2)
        # Should TensorFlow abort while loading (a fatal "F" line, e.g. a CPU without the
        # instructions the wheel needs), the capture dies with the process: the Python
        # traceback of the crash still goes to the real stderr, showing where it stopped.
        had_fault_handler = faulthandler.is_enabled()
        faulthandler.enable(file=saved)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            if had_fault_handler:
                faulthandler.enable()
            else:
                faulthandler.disable()
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not is_noise(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def _flush_stderr():
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run inside `filtered_stderr`, then the first device query."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self._loader.exec_module(module)
            # CUDA is probed here (cuInit); listing physical devices does not initialise
            # the runtime, so visible devices and logical devices can still be set. A
            # failure would recur, and be reported, where the job first uses a device.
            with contextlib.suppress(Exception):
                module.config.list_physical_devices()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` with the other finders and wraps its loader in `_QuietLoader`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        remove_hook()
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_HOOK = _QuietTensorFlowFinder()


def remove_hook():
    """Removes the import hook of `quiet_start` (TensorFlow loads normally)."""
    while _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def quiet_start(argv=None) -> bool:
    """Silences TensorFlow's C++ start-up logs unless the command line asks for them.

    Call it first thing in a command, before anything imports TensorFlow; it
    does not import TensorFlow itself.

    Args:
        argv: the command line; default `sys.argv`.

    Returns:
        True if TensorFlow will be quiet, False if its logs were asked for.
    """
    argv = sys.argv if argv is None else argv
    if wants_tensorflow_logs(argv):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        logging.getLogger("tensorflow").setLevel(logging.NOTSET)
        remove_hook()
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Keras imports matplotlib.pyplot when it is installed; with a home it cannot
    # write, matplotlib warns that it made a temporary config directory instead.
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
    return True
