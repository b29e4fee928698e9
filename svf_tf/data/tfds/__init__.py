"""TensorFlow Datasets builders for Pascal-5i and COCO-20i (optional).

Importing this package registers the builders `pascal5i` and `coco20i` with
TFDS. They read a dataset the user already has (`manual_dir`) and write
TFRecord shards of (image, label, file_name). Training reads list files by
default (`svf_tf.data.build_fold_lists`); the builders are for users who
prefer prepared TFDS shards.
"""

from svf_tf.data.tfds.coco20i import Coco20i
from svf_tf.data.tfds.pascal5i import Pascal5i

__all__ = ["Coco20i", "Pascal5i"]
