"""Figures of finished runs: what SVF did, how the runs learned, what they predict.

    python scripts/analyze_run.py RUN [RUN ...] [--flags]

is `python main.py --mode=analyze --work_dir=RUN --analysis_runs=RUN2,...`
(flags as `--name=value`, e.g. `--analysis_figures=singular_values`,
`--analysis_layers=conv4_block6_2_conv`). Each SVF run gets its own
singular-value figures and cue maps in `RUN/analysis/`; the figures that
compare the runs (curves.png, gallery.png, with their JSON) go to the first
RUN's `analysis/`. See svf_tf/analysis/analyze.py.
"""

import os
import sys

# This checkout's svf_tf, also when another copy is installed in the environment.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from svf_tf.cli import startup  # noqa: E402

startup.quiet_start()  # before anything loads TensorFlow

from svf_tf.cli import errors  # noqa: E402
from svf_tf.cli.main import main  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402

define_flags()


def main_argv(argv):
    """main.py's arguments for `analyze_run.py RUN [RUN ...] [--flags]`."""
    runs = [arg for arg in argv[1:] if not arg.startswith("-")]
    options = [arg for arg in argv[1:] if arg.startswith("-")]
    if not runs:
        errors.fail("give the run directories to analyze: scripts/analyze_run.py RUN [RUN ...] "
                    "[--flags]")
    others = [f"--analysis_runs={','.join(runs[1:])}"] if runs[1:] else []
    return [argv[0], "--mode=analyze", f"--work_dir={runs[0]}", *others, *options]


if __name__ == "__main__":
    sys.argv = main_argv(sys.argv)
    errors.run(main)
