"""The one place that turns `weights=` into a file (None, "imagenet" or a path) and loads it.

"imagenet" means Keras' own ImageNet files (the `include_top=False` ones),
fetched and cached by `keras.utils.get_file` exactly as
`keras.applications.ResNet50/VGG16` do, under `$KERAS_HOME/models` (default
`~/.keras/models`). On a machine without internet, copy the file there by
hand, or pass its path as `weights=`.

`load_weights_file` loads a file by layer name and refuses, in one line, a
file that leaves layers of the model unset or holds layers the model lacks
(`svf_tf.weights.load_report`), unless partial weights are accepted.
"""

import dataclasses
import hashlib
import os

import keras
from absl import logging

from svf_tf.weights.load_report import WeightsLoadReport, match_saved_layers
from svf_tf.weights.saved_layers import keyed_by_model_names, read_saved_layers


@dataclasses.dataclass(frozen=True)
class KerasWeightsFile:
    """One of Keras' pretrained weight files: cache name, URL and md5."""

    file_name: str
    origin: str
    md5: str


_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

# The `include_top=False` ("notop") files, with the URLs and md5 hashes that
# keras/src/applications/resnet.py (WEIGHTS_HASHES["resnet50"][1]) and
# vgg16.py use; tests/weights/test_pretrained.py checks they agree.
KERAS_IMAGENET_WEIGHTS = {
    "resnet50": KerasWeightsFile(
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _KERAS_URL + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626"),
    "vgg16": KerasWeightsFile(
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _KERAS_URL + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc"),
}

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5")


def keras_cache_dir() -> str:
    """The directory `keras.utils.get_file` caches into (before "models").

    Keras' rule: `$KERAS_HOME` if set, else `~/.keras` (`/tmp/.keras` when
    the home directory is not writable); `get_file` then falls back to
    `/tmp/.keras` if that directory is not writable. Read at call time, and
    passed to `get_file` explicitly, so both always agree.
    """
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    if not os.access(home, os.W_OK):
        home = os.path.join("/tmp", ".keras")
    return home


def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _imagenet_file(entry: KerasWeightsFile, download: bool, cache_dir) -> str:
    cache_dir = cache_dir or keras_cache_dir()
    target = os.path.join(cache_dir, "models", entry.file_name)
    by_hand = (
        f"On a machine without internet, download {entry.origin} elsewhere and copy it to "
        f"{target} (Keras' cache: $KERAS_HOME/models, default ~/.keras/models), or pass "
        "its path as weights='/path/to/file.h5'.")
    if os.path.isfile(target):
        if _md5(target) == entry.md5:
            return target
        if not download:
            raise ValueError(
                f"weights='imagenet': the cached file {target} does not have Keras' md5 "
                f"{entry.md5} (an interrupted download or another file?). Delete it. "
                + by_hand)
    elif not download:
        raise FileNotFoundError(
            f"weights='imagenet': {entry.file_name} is not in Keras' cache ({target}) and "
            "download=False. " + by_hand)
    try:
        return keras.utils.get_file(entry.file_name, entry.origin, cache_subdir="models",
                                    file_hash=entry.md5, cache_dir=cache_dir)
    except Exception as error:  # urllib/HTTP/hash errors all mean: no usable file
        raise FileNotFoundError(
            f"weights='imagenet': could not download {entry.origin} ({error}). "
            + by_hand) from error


def _local_file(weights) -> str:
    path = os.path.abspath(os.path.expanduser(os.fspath(weights)))
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"weights={os.fspath(weights)!r}: no such file ({path}). Use None (random), "
            "'imagenet' (Keras' ImageNet file) or the path of an existing .h5/.weights.h5 "
            "weights file.")
    if os.path.isdir(path) or not path.endswith(_WEIGHTS_SUFFIXES):
        hint = ""
        if path.endswith(".keras"):
            hint = (" A .keras file is a whole saved model; write its weights with "
                    "model.save_weights('name.weights.h5').")
        elif path.endswith((".pth", ".pt", ".tar")):
            hint = " A PyTorch checkpoint must be converted to a .weights.h5 file first."
        raise ValueError(
            f"weights={os.fspath(weights)!r} is not a weights file: expected a file ending "
            f"in {' or '.join(_WEIGHTS_SUFFIXES)}.{hint}")
    with open(path, "rb") as file:
        head = file.read(len(_HDF5_SIGNATURE))
    if head != _HDF5_SIGNATURE:
        raise ValueError(
            f"weights={os.fspath(weights)!r} is not a weights file: it is not HDF5 (it "
            f"starts with {head!r}). A truncated download or an HTML error page?")
    return path


def resolve_weights(weights, imagenet=None, *, download=True, cache_dir=None):
    """Turns a `weights=` option into a local file path, or None.

    Args:
        weights: None (random initialisation), "imagenet", or the path of a
            `.h5`/`.weights.h5` file (str or PathLike).
        imagenet: key into `KERAS_IMAGENET_WEIGHTS` ("resnet50", "vgg16")
            naming the Keras file "imagenet" stands for, or None when the
            variant has no Keras ImageNet weights (then "imagenet" is an
            error).
        download: whether "imagenet" may download when the file is not
            cached. With False a missing file is an error (useful offline).
        cache_dir: Keras' cache root; default `keras_cache_dir()`.

    Returns:
        None or an absolute path to an existing HDF5 file.

    Raises:
        FileNotFoundError: a missing path, or an "imagenet" file neither
            cached nor downloadable; the message says where to put it.
        ValueError: anything else that is not a usable weights option.

    Example:
    ```python
    resolve_weights(None)                         # None
    resolve_weights("~/ckpt/resnet50_deep.weights.h5")
    resolve_weights("imagenet", "resnet50")       # ~/.keras/models/resnet50_..._notop.h5
    ```
    """
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        if imagenet is None:
            raise ValueError(
                "weights='imagenet': Keras has no ImageNet weights for this backbone variant "
                "(the deep-stem ResNet-50 and VGG16-BN come from PyTorch checkpoints). Convert "
                "the PyTorch checkpoint to a .weights.h5 file and pass its path as weights=.")
        if imagenet not in KERAS_IMAGENET_WEIGHTS:
            raise ValueError(
                f"imagenet={imagenet!r} is not one of {sorted(KERAS_IMAGENET_WEIGHTS)}.")
        return _imagenet_file(KERAS_IMAGENET_WEIGHTS[imagenet], download, cache_dir)
    if isinstance(weights, (str, os.PathLike)):
        return _local_file(weights)
    raise ValueError(
        f"weights={weights!r} is not accepted: use None (random), 'imagenet', or the path of "
        "a .h5/.weights.h5 file.")


class WeightsMismatchError(ValueError):
    """A weights file does not fit the model; `.report` lists every layer that did not load."""

    def __init__(self, message: str, report: WeightsLoadReport):
        super().__init__(message)
        self.report = report


BACKBONE_FLAGS_FIX = "pass the backbone flags it was saved with (e.g. --stem, --vgg_batch_norm)"
PARTIAL_FLAG = "--partial_weights"


def load_weights_file(model, path: str, description: str, *, partial: bool = False,
                      option: str = "weights", fix: str = BACKBONE_FLAGS_FIX,
                      partial_flag: str | None = PARTIAL_FLAG):
    """Loads a weights file into `model` by layer name, and reports what it set.

    Each layer of the model takes the arrays the file saved for the layer of
    the same path (`svf_tf.weights.saved_layers`), so a file written by a
    backbone with FrozenBatchNormalization loads into one with
    TorchBatchNormalization. A file that does not fit - a layer of the model
    it does not set (every conv and BatchNorm parameter of a backbone must be
    loaded), or a layer of the file with no place in the model (VGG16-BN's
    BatchNorms offered to plain VGG16) - is an error, and nothing is
    assigned, unless `partial` is set; then the layers that fit are loaded,
    the others keep their values, and a warning lists them.

    Args:
        model: the Keras model the file was written for.
        path: a file returned by `resolve_weights`.
        description: what the file should fit, for the error message.
        partial: accept a file that sets only some layers (the
            `--partial_weights` setting). A file that sets none is always an
            error.
        option: the option that named the file, for the message
            ("weights", "--base_learner").
        fix: what the user can do, ending the error message.
        partial_flag: the setting that accepts a partial file, offered in
            the message when some layers fit (None: no such setting).

    Returns:
        The `WeightsLoadReport`.

    Raises:
        ValueError: an unreadable file. WeightsMismatchError (a ValueError):
            a file that does not fit; one line naming the file, the first
            mismatching layers with a count of the rest, and the fix.
    """
    where = f"{option}={path!r}"
    try:
        saved = read_saved_layers(path)
    except ValueError as error:
        raise ValueError(f"{option}={error}") from None
    if not saved.named:
        saved = keyed_by_model_names(saved, model)
    report, assignments = match_saved_layers(model, saved, path)
    if not assignments:
        raise WeightsMismatchError(
            f"{where} does not fit {description} at all: {report.problems(2)}; {fix}.", report)
    if not report.complete and not partial:
        accept = f", or {partial_flag} to load only the layers that fit" if partial_flag else ""
        raise WeightsMismatchError(
            f"{where} does not fit {description}: {report.problems()}; {fix}{accept}.", report)
    for layer, arrays in assignments:
        try:
            layer.load_own_variables({str(i): array for i, array in enumerate(arrays)})
        except (ValueError, TypeError) as error:  # Keras' messages list every variable
            reason = " ".join(str(error).split())[:150]
            raise ValueError(f"{where}: layer '{layer.name}' cannot take its arrays "
                             f"({reason}).") from None
    if not report.complete:
        logging.warning("%s loaded partially into %s (partial weights accepted): %s; the "
                        "layers not set keep their initial values.", where, description,
                        report.problems())
    else:
        logging.info("%s: %s.", where, report.summary())
    return report
