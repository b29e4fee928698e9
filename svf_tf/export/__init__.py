"""SavedModel export of the few-shot models (SVF merged back into plain convolutions)."""

from svf_tf.export.saved_model import export_fsss_model

__all__ = ["export_fsss_model"]
