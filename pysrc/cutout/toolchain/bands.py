"""Split heavy int8 convolutions into bands of output rows, for bounded scratch memory.

onnxruntime's CPU QLinearConv (the integer kernel the WASM build runs) allocates, on
every call, an im2col buffer for the whole output (kernel_dim x H x W bytes, zeroed) and
an int32 GEMM output (4 x C_out x H x W bytes). For ISNet's /stage1d/rebnconvin at 512²
that is 352 MB, more than all the live activations of the network together (~200 MB);
the float Conv, by contrast, expands its input in small per-thread segments. The WASM
heap never shrinks, so a session keeps its largest scratch for as long as it lives.

Each band is a Slice of the quantised input rows it needs (halo included), the same
DequantizeLinear -> Conv -> QuantizeLinear with the padding of its edges, and the bands'
quantised outputs are concatenated: every output pixel gets the same integer arithmetic,
so the file computes the same bytes (tests/models/test_bands.py), with at most
`budget` bytes of scratch per convolution.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# Scratch per convolution call. Measured in onnxruntime-web (docs/MODELS.md): at
# 64 MB ISNet's run is as fast as unbanded and its heap 110-130 MB smaller; at 32 MB it
# is 6 % slower (the bands' row copies) for no more memory saved.
SCRATCH_BUDGET = 64 << 20
_BAND = "/band"  # band i of conv X: nodes X/band<i>/{rows,dq,conv,q}, then X/bands


def scratch_bytes(in_channels: int, kernel: tuple[int, int], out_channels: int,
                  out_hw: tuple[int, int]) -> int:
    """QLinearConv's per-call scratch: im2col (uint8) plus the int32 GEMM output.
    A pointwise convolution reads its input in place: no im2col."""
    pixels = out_hw[0] * out_hw[1]
    col = in_channels * kernel[0] * kernel[1] * pixels if kernel != (1, 1) else 0
    return col + 4 * out_channels * pixels


def unbanded(name: str) -> str:
    """The name of the convolution a band's node came from (others: unchanged)."""
    return name.split(_BAND)[0]


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    graph = inferred.graph
    return {v.name: [d.dim_value if d.HasField("dim_value") else None
                     for d in v.type.tensor_type.shape.dim]
            for v in [*graph.value_info, *graph.input, *graph.output]}


def _band_rows(out_rows: int, bands: int, in_rows: int, kernel: int, stride: int,
               dilation: int, pad_top: int) -> list[tuple[int, int, int, int]]:
    """Per band: (first input row, end input row, top pad, bottom pad)."""
    edges = [out_rows * i // bands for i in range(bands + 1)]  # sizes differ by <= 1
    rows = []
    for first, end in zip(edges, edges[1:]):
        lo = first * stride - pad_top
        hi = (end - 1) * stride - pad_top + dilation * (kernel - 1) + 1
        rows.append((max(lo, 0), min(hi, in_rows), max(0, -lo), max(0, hi - in_rows)))
    return rows


def split_heavy_convs(model: onnx.ModelProto,
                      budget: int = SCRATCH_BUDGET) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of `model` (static QDQ, shapes known after inference) whose int8
    convolutions need at most `budget` bytes of scratch, and the names of those split.

    A convolution qualifies when its input and weight come from DequantizeLinear and its
    output goes to one QuantizeLinear (plus Shape nodes, which then read that Q's
    output: same shape), i.e. what onnxruntime fuses into QLinearConv."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    shapes = _static_shapes(out)
    initializers = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)

    split: list[str] = []
    for conv in list(graph.node):
        if conv.op_type != "Conv":
            continue
        dq, wdq = producer.get(conv.input[0]), producer.get(conv.input[1])
        if not (dq and dq.op_type == "DequantizeLinear" and wdq
                and wdq.op_type == "DequantizeLinear" and wdq.input[0] in initializers):
            continue
        users = consumers.get(conv.output[0], [])
        quants = [u for u in users if u.op_type == "QuantizeLinear"]
        if len(quants) != 1 or any(u.op_type not in ("QuantizeLinear", "Shape") for u in users):
            continue
        q = quants[0]
        attrs = _attrs(conv)
        x_shape, y_shape = shapes.get(conv.input[0]), shapes.get(conv.output[0])
        if (attrs.get("group", 1) != 1 or not x_shape or not y_shape or len(y_shape) != 4
                or None in x_shape[2:] or None in y_shape[2:]):
            continue
        c_out, c_in, kh, kw = initializers[wdq.input[0]].dims
        per_row = scratch_bytes(c_in, (kh, kw), c_out, (1, y_shape[3]))
        bands = math.ceil(y_shape[2] / max(1, budget // per_row))  # rows a band may have
        if bands < 2:
            continue
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        stride = list(attrs.get("strides", [1, 1]))[0]
        dilation = list(attrs.get("dilations", [1, 1]))[0]
        nodes, pieces = [], []
        for i, (lo, hi, top, bottom) in enumerate(
                _band_rows(y_shape[2], bands, x_shape[2], kh, stride, dilation, pads[0])):
            tag = f"{conv.name}{_BAND}{i}"
            graph.initializer.extend([
                numpy_helper.from_array(np.array([lo], np.int64), tag + "/starts"),
                numpy_helper.from_array(np.array([hi], np.int64), tag + "/ends"),
                numpy_helper.from_array(np.array([2], np.int64), tag + "/axes")])
            nodes += [
                helper.make_node("Slice", [dq.input[0], tag + "/starts", tag + "/ends",
                                           tag + "/axes"], [tag + "/x_q"], name=tag + "/rows"),
                helper.make_node("DequantizeLinear", [tag + "/x_q", *dq.input[1:]],
                                 [tag + "/x"], name=tag + "/dq", **_attrs(dq)),
                helper.make_node("Conv", [tag + "/x", *conv.input[1:]], [tag + "/y"],
                                 name=tag + "/conv",
                                 **{**attrs, "pads": [top, pads[1], bottom, pads[3]]}),
                helper.make_node("QuantizeLinear", [tag + "/y", *q.input[1:]], [tag + "/y_q"],
                                 name=tag + "/q", **_attrs(q)),
            ]
            pieces.append(tag + "/y_q")
        nodes.append(helper.make_node("Concat", pieces, [q.output[0]], name=conv.name + "/bands",
                                      axis=2))
        at = list(graph.node).index(conv)
        for j, node in enumerate(nodes):  # before the conv: its input is defined by then
            graph.node.insert(at + j, node)
        for shape_node in (u for u in users if u.op_type == "Shape"):
            shape_node.input[0] = q.output[0]
        graph.node.remove(conv)
        graph.node.remove(q)
        if consumers[conv.input[0]] == [conv]:  # the DequantizeLinear fed only this conv
            graph.node.remove(dq)
        split.append(conv.name)
    if split:
        onnx.checker.check_model(out)
    return out, split
