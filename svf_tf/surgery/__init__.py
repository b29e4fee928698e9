"""Model-level SVF: apply, merge, adapter files, summary."""

from svf_tf.surgery.adapter_format import read_adapter_header
from svf_tf.surgery.apply_svf import apply_svf
from svf_tf.surgery.merge_svf import merge_svf
from svf_tf.surgery.svf_summary import SVFSummary, svf_summary
from svf_tf.surgery.svf_weights import load_svf_weights, save_svf_weights

__all__ = ["SVFSummary", "apply_svf", "load_svf_weights", "merge_svf", "read_adapter_header",
           "save_svf_weights", "svf_summary"]
