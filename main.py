"""svf-tf command line: `python main.py --flagfile=configs/<setting>.cfg [--flags]`.

Every flag comes from a setting of svf_tf/config/ (`python main.py --helpfull`);
`--mode` picks the job (svf_tf/config/modes.py, `MODES`). Without flags it runs the
built-in demo on the synthetic dataset (frozen backbone vs SVF, a few minutes
on a CPU); a config runs the job it is the recipe of.
"""

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from svf_tf.cli import errors  # noqa: E402
from svf_tf.cli.main import main  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402

define_flags()

if __name__ == "__main__":
    errors.run(main)
