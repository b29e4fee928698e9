"""Ctrl-C and SIGTERM during training: stop at a step boundary, save, say how to resume.

A cluster scheduler or a preemptible cloud VM stops a job with SIGTERM; a
person at a terminal with SIGINT (Ctrl-C). `StopSignals` turns the first one
into `TrainingInterrupted`, raised where the loop can save a consistent
state: inside a step and its bookkeeping (`critical()`) or a checkpoint save
the signal is held until that is done; anywhere else (waiting for data,
validation) the work is abandoned at once, since the last completed step is
a consistent state. The trainer then saves a verified checkpoint and
re-raises; `main.py` prints one line and exits 130 (SIGINT) or 143 (SIGTERM).
A second signal exits at once (after `on_abort`, e.g. releasing the run's
lock): whatever was being written is a staging file the next run cleans up.
"""

import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(BaseException):  # noqa: N818 (like KeyboardInterrupt)
    """Training stopped on a signal; `checkpoint` is the one to resume from (or None).

    A BaseException, like KeyboardInterrupt, so `except Exception` in user
    code does not swallow a stop request.
    """

    def __init__(self, signum, checkpoint=None, step=None):
        super().__init__(signum)
        self.signum = signum
        self.checkpoint = checkpoint
        self.step = step

    @property
    def exit_code(self):
        return 128 + self.signum

    def message(self):
        name = signal.Signals(self.signum).name
        where = f" at step {self.step}" if self.step is not None else ""
        saved = (f"saved {self.checkpoint}" if self.checkpoint
                 else "no checkpoint was written yet")
        return (f"interrupted by {name}{where}: {saved}; run the same command again to "
                "resume.")


class StopSignals:
    """Installs the SIGINT/SIGTERM handlers of the module docstring while in use.

    Args:
        log: callable taking one line of text.
        on_abort: callables run before exiting on a second signal.
    """

    def __init__(self, log=print, on_abort=()):
        self.log = log
        self.on_abort = list(on_abort)
        self.signum = None
        self._critical = 0
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False

    def _handle(self, signum, frame):
        if self.signum is not None:
            print(f"\nsecond {signal.Signals(signum).name}: exiting now; the newest published "
                  "checkpoint is intact.", file=sys.stderr)
            for abort in self.on_abort:
                with contextlib.suppress(Exception):
                    abort()
            os._exit(128 + signum)
        self.signum = signum
        if self._critical:
            self.log(f"\n{signal.Signals(signum).name} received: finishing the current step, "
                     "then saving a checkpoint (send it again to quit at once).")
        else:
            raise TrainingInterrupted(signum)

    @contextlib.contextmanager
    def critical(self):
        """A section a signal does not cut: it is honoured at the end (`raise_if_requested`)."""
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1

    def raise_if_requested(self):
        if self.signum is not None:
            raise TrainingInterrupted(self.signum)
