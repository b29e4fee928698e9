"""Losses of the three methods: cross entropy with 255 ignored, plus auxiliary terms.

As in the SVF code `model/aspp.py`, PFENet `model/PFENet.py` and BAM
`model/BAM.py` (`forward` of each, `CrossEntropyLoss(ignore_index=255)`).

Every function takes the model's output dict and the labels, and returns a
dict of scalars whose "loss" entry is the total to minimise (the other
entries are its parts, for logging).
"""

import keras
import numpy as np
import tensorflow as tf

from svf_tf.constants import IGNORE_LABEL


def _label_checks(labels, num_classes, ignore_label):
    """Label values must be in [0, num_classes) or `ignore_label`.

    Eagerly a ValueError naming the bad values; in a graph a TF assertion
    (otherwise a GPU would silently give NaN for an out-of-range label).
    """
    if tf.executing_eagerly():
        values = np.unique(keras.ops.convert_to_numpy(labels))
        bad = [v for v in values.tolist()
               if not (0 <= v < num_classes or v == ignore_label)]
        if bad:
            raise ValueError(
                f"Labels may only hold 0..{num_classes - 1} and {ignore_label} (ignore) for "
                f"{num_classes}-class logits; got values {bad[:10]}.")
        return []
    valid = ((labels >= 0) & (labels < num_classes)) | (labels == ignore_label)
    return [tf.debugging.Assert(tf.reduce_all(valid), [
        f"Labels may only hold 0..{num_classes - 1} and {ignore_label}"])]


def masked_cross_entropy(logits, labels, ignore_label=IGNORE_LABEL):
    """Softmax cross entropy, mean over the pixels whose label is not `ignore_label`.

    PyTorch's `CrossEntropyLoss(ignore_index=255)`. The logits are used as
    given (BAM's final output is probability-valued and still treated as
    logits in BAM `OneModel.forward`). When no pixel is valid the loss is 0 (PyTorch
    returns NaN), so a fully ignored batch does not poison training.

    Args:
        logits: [B, H, W, C] float.
        labels: [B, H, W] int in [0, C) or `ignore_label`.
        ignore_label: label value to ignore.

    Returns:
        A float32 scalar.
    """
    logits = tf.convert_to_tensor(logits)
    labels = tf.convert_to_tensor(labels)
    if len(labels.shape) != 3 or len(logits.shape) != 4 or (
            None not in (*labels.shape[1:3], *logits.shape[1:3])
            and tuple(labels.shape[1:3]) != tuple(logits.shape[1:3])):
        raise ValueError(
            f"Labels {tuple(labels.shape)} must be [B, H, W] with the logits' [B, H, W, C] "
            f"= {tuple(logits.shape)}.")
    labels = tf.cast(labels, tf.int32)
    with tf.control_dependencies(_label_checks(labels, logits.shape[-1], ignore_label)):
        labels = tf.identity(labels)
    valid = tf.not_equal(labels, ignore_label)
    safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=safe_labels, logits=tf.cast(logits, tf.float32))
    valid = tf.cast(valid, tf.float32)
    return tf.reduce_sum(per_pixel * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def baseline_loss(outputs, query_mask):
    """The SVF baseline: CE of the logits only (SVF paper Sec. 4.1: "only sets main loss")."""
    main = masked_cross_entropy(outputs["logits"], query_mask)
    return {"loss": main, "main_loss": main}


def pfenet_loss(outputs, query_mask, aux_weight=1.0):
    """PFENet: main CE + aux_weight * mean over bins of the auxiliary CEs (`PFENet.forward`).

    Args:
        outputs: {"logits", "aux_logits": [...]} at the label resolution.
        query_mask: [B, H, W] in {0, 1, 255}.
        aux_weight: 1.0 in PFENet and the SVF code.
    """
    main = masked_cross_entropy(outputs["logits"], query_mask)
    aux = tf.add_n([masked_cross_entropy(a, query_mask) for a in outputs["aux_logits"]])
    aux = aux / len(outputs["aux_logits"])
    return {"loss": main + aux_weight * aux, "main_loss": main, "aux_loss": aux}


def bam_loss(outputs, query_mask, query_base_mask=None, aux_weight1=1.0, aux_weight2=1.0):
    """BAM: CE(final) + aux_weight1 CE(meta) + aux_weight2 CE(base, base labels).

    BAM `model/BAM.py` (`OneModel.forward`) and `train.py` (`train`).

    The base term has no gradient (the base learner is frozen,
    github.com/chunbolang/BAM/issues/4);
    it is included when `query_base_mask` is given, for the logged value.

    Args:
        outputs: {"logits", "meta_logits", "base_logits"}.
        query_mask: [B, H, W] in {0, 1, 255}.
        query_base_mask: optional [B, H, W] base-learner labels (0 = background,
            1..num_base_classes, 255).
        aux_weight1, aux_weight2: 1.0 in BAM and the SVF code.
    """
    main = masked_cross_entropy(outputs["logits"], query_mask)
    meta = masked_cross_entropy(outputs["meta_logits"], query_mask)
    parts = {"main_loss": main, "meta_loss": meta}
    total = main + aux_weight1 * meta
    if query_base_mask is not None:
        base = masked_cross_entropy(outputs["base_logits"], query_base_mask)
        parts["base_loss"] = base
        total = total + aux_weight2 * base
    return {"loss": total, **parts}


LOSSES = {"baseline": baseline_loss, "pfenet": pfenet_loss, "bam": bam_loss}


def fsss_loss(method, outputs, batch, **weights):
    """The loss of `method` for a model output and a pipeline batch.

    Args:
        method: "baseline", "pfenet" or "bam".
        outputs: the model's output dict.
        batch: dict with "query_mask" (and, for BAM, optionally
            "query_base_mask").
        **weights: aux_weight (PFENet) or aux_weight1/aux_weight2 (BAM).

    Returns:
        Dict of scalars; "loss" is the total.
    """
    if method not in LOSSES:
        raise ValueError(f"method={method!r} is not accepted: use one of {sorted(LOSSES)}.")
    if method == "bam":
        return bam_loss(outputs, batch["query_mask"], batch.get("query_base_mask"), **weights)
    return LOSSES[method](outputs, batch["query_mask"], **weights)
