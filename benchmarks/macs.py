"""The work of a training step: multiply-accumulates of its live ops, from its traced graph."""

import math

# The work of a training step, counted in its traced graph. TensorFlow's
# profiler counts only ops with registered statistics (not the conv gradients)
# and every op of the graph, also those the runtime prunes: the gradient of a
# conv is built for its kernel and its input together, and the one nothing
# reads (a frozen kernel's) never runs.
#: Conv and matmul ops: their multiply-accumulates, from static shapes.
MAC_KINDS = {"Conv2D": "forward", "Conv2DBackpropInput": "input_grad",
             "Conv2DBackpropFilter": "kernel_grad", "MatMul": "matmul",
             "BatchMatMulV2": "matmul", "BatchMatMulV3": "matmul", "Einsum": "matmul"}


def op_macs(op):
    """Multiply-accumulates of one `MAC_KINDS` op (NHWC convs; 0 for other ops)."""
    def dims(tensor):
        return [int(d) for d in tensor.shape]

    kind = op.type
    if kind == "Conv2D":  # output pixels x channels x (kh kw cin)
        kernel = dims(op.inputs[1])
        return math.prod(dims(op.outputs[0])) * math.prod(kernel[:3])
    if kind in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):  # as the forward conv
        kernel = dims(op.inputs[1] if kind == "Conv2DBackpropInput" else op.outputs[0])
        return math.prod(dims(op.inputs[2])) * math.prod(kernel[:3])
    if kind == "Einsum":  # the product of every index's extent
        inputs = op.get_attr("equation").decode().split("->")[0].split(",")
        extent = {}
        for letters, tensor in zip(inputs, op.inputs, strict=True):
            extent.update(zip(letters, dims(tensor), strict=True))
        return math.prod(extent.values())
    if kind in MAC_KINDS:  # MatMul / BatchMatMul: output x contracted extent
        a = dims(op.inputs[0])
        transposed = op.get_attr("transpose_a" if kind == "MatMul" else "adj_x")
        return math.prod(dims(op.outputs[0])) * (a[-2] if transposed else a[-1])
    return 0


def live_ops(graph):
    """The ops the runtime keeps: the fan-in of the graph's outputs and stateful ops."""
    outputs = {tensor.op for tensor in getattr(graph, "outputs", ())}
    stack = [op for op in graph.get_operations() if op in outputs or op._is_stateful]
    live = set()
    while stack:
        op = stack.pop()
        if op not in live:
            live.add(op)
            stack.extend([tensor.op for tensor in op.inputs] + list(op.control_inputs))
    return live


def graph_macs(graph, totals=None, seen=None):
    """{kind: multiply-accumulates} of the live ops of `graph` and its nested functions."""
    totals = dict.fromkeys(sorted(set(MAC_KINDS.values())), 0) if totals is None else totals
    seen = set() if seen is None else seen
    for op in live_ops(graph):
        if op.type in MAC_KINDS:
            totals[MAC_KINDS[op.type]] += op_macs(op)
    for name, function in getattr(graph, "_functions", {}).items():
        if name not in seen and getattr(function, "graph", None) is not None:
            seen.add(name)
            graph_macs(function.graph, totals, seen)
    return totals
