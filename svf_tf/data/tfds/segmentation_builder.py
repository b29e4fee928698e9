"""The shared part of the Pascal-5i and COCO-20i TFDS builders.

Both read (image, label) pairs from a dataset root given as the TFDS manual
directory, using the same list rule as training (`svf_tf.data.lists.list_files`),
and store per example the original JPEG bytes (not re-encoded), the label as
a single-channel PNG of raw class indices, and the file name (the image's
name without extension, also the example key).
"""

import os

import numpy as np
import tensorflow_datasets as tfds

from svf_tf.data.image_io import check_jpeg_complete, read_label
from svf_tf.data.lists.class_splits import NUM_CLASSES
from svf_tf.data.lists.list_files import check_data_root, derived_pairs, resolve


class SegmentationListBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder over a list-file segmentation dataset; subclasses set DATASET."""

    DATASET = ""
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "label": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            description=(f"{self.DATASET} semantic segmentation: images with index labels "
                         f"0..{NUM_CLASSES[self.DATASET]} and 255 (ignore)."),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = check_data_root(os.fspath(dl_manager.manual_dir), self.DATASET)
        return {split: self._generate_examples(root, derived_pairs(self.DATASET, root, split))
                for split in ("train", "val")}

    def _generate_examples(self, root, pairs):
        num_classes = NUM_CLASSES[self.DATASET]
        for image, label in pairs:
            image_path = resolve(root, image)
            if not os.path.isfile(image_path):
                raise FileNotFoundError(
                    f"Image {image_path!r} does not exist: check the manual_dir "
                    f"({root!r}) and its split files."
                )
            with open(image_path, "rb") as f:
                encoded = f.read()
            check_jpeg_complete(encoded, image_path)
            index_label = read_label(resolve(root, label), num_classes=num_classes)
            name = os.path.splitext(os.path.basename(image_path))[0]
            yield name, {"image": encoded, "label": index_label[..., np.newaxis],
                         "file_name": name}
