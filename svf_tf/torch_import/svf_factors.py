"""Merging the SVF authors' decomposed convs back into plain conv weights.

A model trained with SVF in the authors' PyTorch code (`model/svf.py`,
`SVD_Conv2d`) saves every decomposed conv `X` as three tensors: `X.conv_V.weight`
(rank, in, kh, kw), `X.vector_S` (1, rank, 1, 1) and `X.conv_U.weight`
(out, rank, 1, 1), plus `X.conv_U.bias` when the conv had a bias (VGG). The
layer computes conv_U(conv_V(x) * S), which is the single conv

    W[o, i, h, w] = sum_r U[o, r] * S[r] * V[r, i, h, w]

with the bias of conv_U. Merging gives the plain key `X.weight` (and
`X.bias`), which the key maps place like any other conv; the Keras model is
then the merged equivalent of the trained SVF model (as `svf_tf.merge_svf`
produces), ready for evaluation or for a new SVF decomposition.
"""

import numpy as np

_U = ".conv_U.weight"
_V = ".conv_V.weight"
_S = ".vector_S"
_U_BIAS = ".conv_U.bias"


def merge_svf_factors(tensors: dict):
    """Replaces each complete (conv_U, vector_S, conv_V) triple by one conv weight.

    Args:
        tensors: {key: numpy array}, no `module.` prefix.

    Returns:
        (tensors, merged): the new dict (order kept, merged keys where the
        conv_U weight was) and {merged key: [source keys]}. Incomplete
        triples are left as they are (and end up unplaced).

    Raises:
        ValueError: factor shapes that do not compose.
    """
    prefixes = [key[:-len(_U)] for key in tensors
                if key.endswith(_U) and key[:-len(_U)] + _V in tensors
                and key[:-len(_U)] + _S in tensors]
    if not prefixes:
        return tensors, {}
    consumed, merged_values, merged = set(), {}, {}
    for prefix in prefixes:
        u, s, v = tensors[prefix + _U], tensors[prefix + _S], tensors[prefix + _V]
        rank = v.shape[0] if v.ndim == 4 else None
        if u.ndim != 4 or u.shape[1:] != (rank, 1, 1) or s.size != rank:
            raise ValueError(
                f"SVF factors of {prefix!r} do not compose: conv_U {u.shape}, vector_S "
                f"{s.shape}, conv_V {v.shape}; expected (out, r, 1, 1), (1, r, 1, 1), "
                "(r, in, kh, kw).")
        weight = np.einsum("or,r,rihw->oihw", u[:, :, 0, 0].astype(np.float64),
                           s.reshape(-1).astype(np.float64), v.astype(np.float64))
        sources = [prefix + _U, prefix + _S, prefix + _V]
        merged_values[prefix + _U] = {prefix + ".weight": weight.astype(np.float32)}
        if prefix + _U_BIAS in tensors:
            merged_values[prefix + _U][prefix + ".bias"] = tensors[prefix + _U_BIAS]
            sources.append(prefix + _U_BIAS)
        consumed.update(sources)
        merged[prefix + ".weight"] = sources
    clash = sorted(k for values in merged_values.values() for k in values if k in tensors)
    if clash:
        raise ValueError(
            f"{clash} exist both as plain tensors and as SVF factors; the checkpoint mixes a "
            "decomposed and an undecomposed model.")
    result = {}
    for key, value in tensors.items():
        if key in merged_values:
            result.update(merged_values[key])
        elif key not in consumed:
            result[key] = value
    return result, merged
