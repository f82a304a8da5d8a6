"""Generic ONNX graph rewrites that keep CPU output unchanged but dodge execution-provider bugs."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def insert_before(graph: onnx.GraphProto, new_nodes: dict[str, list[onnx.NodeProto]]) -> None:
    """Splice `new_nodes[name]` into the graph right before the node called `name`,
    keeping the topological order the rewrites rely on."""
    order: list[onnx.NodeProto] = []
    for node in graph.node:
        order.extend(new_nodes.get(node.name, []))
        order.append(node)
    del graph.node[:]
    graph.node.extend(order)


def pad_conv_channels(model: onnx.ModelProto, multiple: int = 4, min_kernel: int = 2) -> list[str]:
    """Zero-pad the input channels of dense Convs whose channel count is not a multiple of `multiple`.

    Why: onnxruntime's WebGPU EP computes wrong values for a dense 3x3 Conv whose input
    has e.g. 35 or 99 channels (MODNet's Conv_249 / Conv_304; DESIGN.md, "WebGPU measured");
    padding the activation with zero channels and the weight with zero input channels
    makes WebGPU match CPU, and on CPU the result is mathematically unchanged.

    Only group == 1 Convs with a float initializer weight and a kernel of at least
    `min_kernel` along some axis are touched (1x1 Convs take another code path).
    Edits `model` in place; returns the names of the rewritten Conv nodes.
    """
    if _opset(model) < 11:
        raise ValueError("Pad with a pads input needs opset >= 11")
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    users: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
    padded_inputs: dict[tuple[str, int], str] = {}
    pad_nodes: dict[str, list[onnx.NodeProto]] = {}  # inserted before the Conv
    done: list[str] = []
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in inits or _attr(node, "group", 1) != 1:
            continue
        wt = inits[node.input[1]]
        if wt.data_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
            continue
        w = numpy_helper.to_array(wt)
        channels = w.shape[1]
        extra = (-channels) % multiple
        if extra == 0 or max(w.shape[2:]) < min_kernel:
            continue
        key = (node.input[0], extra)
        if key not in padded_inputs:
            base = f"{node.input[0]}_padc{channels + extra}"
            pads = np.zeros(2 * w.ndim, np.int64)
            pads[w.ndim + 1] = extra  # end of the channel axis
            graph.initializer.append(numpy_helper.from_array(pads, f"{base}_pads"))
            pad_nodes.setdefault(node.name, []).append(
                helper.make_node("Pad", [node.input[0], f"{base}_pads"], [base], f"{base}_Pad", mode="constant")
            )
            padded_inputs[key] = base
        node.input[0] = padded_inputs[key]
        zeros = np.zeros((w.shape[0], extra, *w.shape[2:]), w.dtype)
        new_w = np.concatenate([w, zeros], axis=1)
        if users.get(wt.name, 0) > 1:  # shared weight: give this Conv its own padded copy
            name = f"{wt.name}_padc{channels + extra}"
            graph.initializer.append(numpy_helper.from_array(new_w, name))
            node.input[1] = name
        else:
            wt.CopyFrom(numpy_helper.from_array(new_w, wt.name))
        done.append(node.name)
    insert_before(graph, pad_nodes)
    # value_info for the rewritten weights / inputs is stale now
    stale = {n for n in padded_inputs.values()} | {i.name for i in graph.initializer}
    keep = [v for v in graph.value_info if v.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    onnx.checker.check_model(model)
    return done
