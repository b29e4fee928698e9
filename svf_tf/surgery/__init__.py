"""Model-level SVF: apply, merge and unmerge, named adapters, adapter files, summary."""

from svf_tf.surgery.adapter_format import read_adapter_header
from svf_tf.surgery.adapters import (
    active_adapter,
    add_adapter,
    delete_adapter,
    disable_adapter,
    freeze_adapter_mixing,
    learn_adapter_mixing,
    list_adapters,
    mix_adapters,
    set_adapter,
)
from svf_tf.surgery.apply_svf import apply_svf
from svf_tf.surgery.merge_svf import merge_svf
from svf_tf.surgery.svf_summary import SVFSummary, svf_summary
from svf_tf.surgery.svf_weights import load_svf_weights, save_svf_weights
from svf_tf.surgery.unmerge_svf import unmerge_svf

__all__ = ["SVFSummary", "active_adapter", "add_adapter", "apply_svf", "delete_adapter",
           "disable_adapter", "freeze_adapter_mixing", "learn_adapter_mixing", "list_adapters",
           "load_svf_weights", "merge_svf", "mix_adapters",
           "read_adapter_header", "save_svf_weights", "set_adapter", "svf_summary",
           "unmerge_svf"]
