"""How fine-tuning changed the singular values of each SVF layer (SVF paper Figs. 4, 8-11).

For one layer with initial singular values S0 (the SVD of the pre-trained
kernel, descending) and trained ones S, the record of `layer_change` keeps
the initial top-k (k = 30 by default, the paper's choice) in their initial
order: their index in S0, S0, S, the change S - S0 and the relative change
(S - S0) / S0. Over all R values of the layer it also keeps the mean and
the largest |relative change| (the overview across the backbone).
Everything is float64, rounded by nothing: the JSON holds the numbers the
figures draw.
"""

import numpy as np

#: The paper's number of singular values per chart.
TOP = 30


def _relative(change, initial):
    return change / np.maximum(np.abs(initial), 1e-12)


def layer_change(initial, final, top=TOP):
    """The change record of one layer (module docstring) from its S0 and S arrays.

    Raises:
        ValueError: the two arrays differ in length.
    """
    initial, final = np.asarray(initial, np.float64), np.asarray(final, np.float64)
    if initial.shape != final.shape:
        raise ValueError(f"singular values of shape {initial.shape} before and {final.shape} "
                         "after training: not the same layer.")
    order = np.argsort(-initial, kind="stable")[:top]
    change = final - initial
    relative = _relative(change, initial)
    return {
        "rank": int(initial.size),
        "index": order.tolist(),
        "initial": initial[order].tolist(),
        "final": final[order].tolist(),
        "change": change[order].tolist(),
        "relative_change": relative[order].tolist(),
        "mean_abs_relative_change": float(np.mean(np.abs(relative))),
        "max_abs_relative_change": float(np.max(np.abs(relative))),
    }


def singular_value_change(infos, initial, final, top=TOP):
    """{"top": k, "layers": [record per SVF layer, graph order]} for the run's JSON.

    Args:
        infos: the run's `SVFLayerInfo`s (`svf_tf.analysis.svf_layers`).
        initial: {path: S0} before training; final: {path: S} of the checkpoint.
        top: how many of the largest initial singular values each record keeps.
    """
    layers = []
    for info in infos:
        record = {"path": info.path, "stage": info.stage, "kind": info.kind}
        record.update(layer_change(initial[info.path], final[info.path], top))
        layers.append(record)
    return {"top": top, "layers": layers}


def growth_and_reduction(record):
    """(index in S0 of the largest growth, of the largest reduction) among a record's top-k."""
    change = np.asarray(record["change"])
    return record["index"][int(np.argmax(change))], record["index"][int(np.argmin(change))]
