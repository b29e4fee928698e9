"""svf-tf: Singular Value Fine-tuning (SVF) for few-shot segmentation in Keras.

The SVF layer library works on any Keras model:

    import svf_tf
    svf_model = svf_tf.apply_svf(model, filters=r"conv[345]_block")
    print(svf_tf.svf_summary(svf_model))
    svf_tf.save_svf_weights(svf_model, "adapter.svf.npz")
    plain = svf_tf.merge_svf(svf_model)
    svf_tf.add_adapter(svf_model, "a"); svf_tf.set_adapter(svf_model, "a")  # named adapters

Adapters (switching, mixing, files, unmerge): docs/adapters.md.

Where each concept lives: docs/architecture.md (one line per folder).

The names below are imported on first use, so that TensorFlow-free parts of
the package (dataset preparation, list building) start without loading it.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "SVFConv2D": "svf_tf.layers",
    "SVFDense": "svf_tf.layers",
    "SVFEinsumDense": "svf_tf.layers",
    "SVFSummary": "svf_tf.surgery",
    "active_adapter": "svf_tf.surgery",
    "add_adapter": "svf_tf.surgery",
    "apply_svf": "svf_tf.surgery",
    "delete_adapter": "svf_tf.surgery",
    "disable_adapter": "svf_tf.surgery",
    "freeze_adapter_mixing": "svf_tf.surgery",
    "learn_adapter_mixing": "svf_tf.surgery",
    "list_adapters": "svf_tf.surgery",
    "load_svf_weights": "svf_tf.surgery",
    "merge_svf": "svf_tf.surgery",
    "mix_adapters": "svf_tf.surgery",
    "read_adapter_header": "svf_tf.surgery",
    "save_svf_weights": "svf_tf.surgery",
    "set_adapter": "svf_tf.surgery",
    "svf_summary": "svf_tf.surgery",
    "unmerge_svf": "svf_tf.surgery",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'svf_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
