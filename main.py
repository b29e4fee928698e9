"""svf-tf command line: `python main.py [--flagfile=configs/...cfg] [--flags]`.

Flags are defined in svf_tf/flags.py; `python main.py --helpfull` lists them.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402

import svf_tf.flags  # noqa: E402,F401  (defines the flags)
from svf_tf.utils import cli  # noqa: E402

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's export chatter
    from svf_tf.svf_demo import run_svf_demo

    if FLAGS.mode == "svf_demo":
        run_svf_demo(FLAGS.work_dir, backbone=FLAGS.backbone, image_size=FLAGS.image_size,
                     steps=FLAGS.steps, batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    print(f"\nwork directory: {os.path.abspath(FLAGS.work_dir)}", file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
