"""svf-tf: Singular Value Fine-tuning (SVF) for few-shot segmentation in Keras.

The SVF layer library works on any Keras model:

    import svf_tf
    svf_model = svf_tf.apply_svf(model, filters=r"conv[345]_block")
    print(svf_tf.svf_summary(svf_model))
    svf_tf.save_svf_weights(svf_model, "adapter.svf.npz")
    plain = svf_tf.merge_svf(svf_model)
"""

from svf_tf.layers import SVFConv2D, SVFDense
from svf_tf.surgery import (
    SVFSummary,
    apply_svf,
    load_svf_weights,
    merge_svf,
    save_svf_weights,
    svf_summary,
)

__version__ = "0.1.0"

__all__ = ["SVFConv2D", "SVFDense", "SVFSummary", "apply_svf", "load_svf_weights", "merge_svf",
           "save_svf_weights", "svf_summary"]
