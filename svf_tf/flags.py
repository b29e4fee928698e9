"""Every command-line flag of `main.py`, defined once, typed and documented.

Flagfiles in `configs/` only override these. Library code never reads them:
`main.py` turns them into plain arguments.
"""

from absl import flags

MODES = ("svf_demo",)

flags.DEFINE_enum("mode", "svf_demo", MODES,
                  "What to run. svf_demo: decompose a Keras backbone, train its singular "
                  "values briefly, merge, save the adapter and export (the smallest "
                  "end-to-end use of the SVF library).")
flags.DEFINE_string("work_dir", "runs/svf_demo",
                    "Directory for the run's outputs (summary.json, adapter, SavedModel).")
flags.DEFINE_enum("backbone", "resnet50", ["resnet50", "vgg16"], "Backbone network.")
flags.DEFINE_integer("image_size", 97, "Square input size in pixels.", lower_bound=32,
                     upper_bound=1025)
flags.DEFINE_integer("steps", 5, "Training steps on the singular values.", lower_bound=0)
flags.DEFINE_integer("batch_size", 2, "Images per step.", lower_bound=1)
flags.DEFINE_integer("seed", 321, "Random seed (the references use 321).")
