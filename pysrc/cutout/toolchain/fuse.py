"""Wrap a segmentation ONNX model into the browser contract.

Every fused model has exactly one input and two outputs (the engine relies on
these names, types and shapes):

    rgba   uint8 [1, H, W, 4]   any H, W
    size   int32 [2]            (dynamic models only) the model's input height, width
    alpha  uint8 [1, H, W]      foreground alpha at the input's size
    cutout uint8 [1, H, W, 4]   input RGB, A replaced by alpha

Pre- and post-processing live inside the graph because onnxruntime does them
an order of magnitude faster than Python under Pyodide (4000x3000 pre/post:
1.22 s -> 0.14 s), and uint8 tensors are 4x smaller to move across the
JS/Python boundary. Only ops that both onnxruntime-web backends run are used: the WASM backend
(onnxruntime's CPU EP) and the WebGPU EP. The WebGPU EP has no antialiased
Resize ("The antialias attribute of Resize operator is NOT implemented",
Chromium 156, onnxruntime-web 1.30), so the graph's resizes are plain bilinear
and callers feed it the model's own input size, shrunk beforehand by the
separate `resize_model()` graph (antialiased, always on WASM / the CPU EP, so
the browser and the native pipeline feed identical pixels): the model graph's
resizes are then identities, kept so that any size still gives an answer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

MIN_OPSET = 18
# Opset 18 models need IR version 8.
MIN_IR_VERSION = 8

INPUT = "rgba"
SIZE = "size"
OUTPUTS = ("alpha", "cutout")
_P = "cutout/"  # prefix of every tensor/node we add, to stay clear of the model's names

ScaleMode = Literal["max", "255"]
PostMode = Literal["minmax", "none"]


@dataclass(frozen=True)
class FusionSpec:
    """How one source model wants its input prepared and its output read.

    U2-Netp (rembg): scale='max', ImageNet mean/std, post='minmax'.
    ISNet: scale='255', mean 0.5, std 1.0, post='none' (already sigmoid).
    MODNet: scale='255', mean 0.5, std 0.5 (RGB to [-1, 1]), post='none'.
    """

    native_size: tuple[int, int]  # (height, width) the model is run at
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: ScaleMode = "255"  # 'max': divide by the image's max (rembg); '255': by 255
    output: str | None = None  # model output holding the mask; None = first output
    post: PostMode = "none"  # 'minmax': (d - min) / (max - min), as rembg does
    # True: the model takes any H x W (multiples of 32) and the caller picks it
    # per image through the `size` input; native_size is then only the default.
    dynamic: bool = False

    def __post_init__(self) -> None:
        if self.scale not in ("max", "255"):
            raise ValueError(f"scale must be 'max' or '255', not {self.scale!r}")
        if self.post not in ("minmax", "none"):
            raise ValueError(f"post must be 'minmax' or 'none', not {self.post!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise ValueError("mean and std need 3 channels, std non-zero")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FusionSpec:
        size = d["native_size"]
        size = (size, size) if isinstance(size, int) else tuple(size)
        return cls(
            native_size=(int(size[0]), int(size[1])),
            mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
            scale=d.get("scale", "255"),
            output=d.get("output"),
            post=d.get("post", "none"),
            dynamic=bool(d.get("dynamic", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["native_size"] = list(self.native_size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _subgraph_names(node: onnx.NodeProto) -> set[str]:
    """Every tensor name a node's subgraphs read (they may capture outer tensors)."""
    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            for n in g.node:
                names.update(n.input)
                names |= _subgraph_names(n)
    return names


def _prune(graph: onnx.GraphProto, keep_output: str) -> tuple[list[onnx.NodeProto], set[str]]:
    """Nodes needed for keep_output (in original order) and the tensor names they read.

    Side outputs (U2-Net's d2..d6 sigmoids) would otherwise still be computed.
    """
    producer = {out: i for i, n in enumerate(graph.node) for out in n.output}
    needed: set[int] = set()
    used: set[str] = set()
    stack = [keep_output]
    while stack:
        name = stack.pop()
        if name in used:
            continue
        used.add(name)
        i = producer.get(name)
        if i is None or i in needed:
            continue
        needed.add(i)
        node = graph.node[i]
        stack.extend(x for x in node.input if x)
        stack.extend(_subgraph_names(node))
    return [graph.node[i] for i in sorted(needed)], used


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value), _P + name)


def fuse(model: onnx.ModelProto, spec: FusionSpec, name: str = "cutout") -> onnx.ModelProto:
    """Return a new model implementing the browser contract around `model`."""
    opset = max(MIN_OPSET, _opset(model))
    if _opset(model) < opset:
        # The converter rewrites ops whose signature changed (e.g. Unsqueeze's
        # axes moved from attribute to input in 13); plain relabelling would not validate.
        model = version_converter.convert_version(model, opset)
    g = model.graph

    init_names = {t.name for t in g.initializer}
    real_inputs = [i for i in g.input if i.name not in init_names]
    if len(real_inputs) != 1:
        raise ValueError(f"expected one image input, got {[i.name for i in real_inputs]}")
    model_in = real_inputs[0]
    in_type = model_in.type.tensor_type.elem_type
    out_name = spec.output or g.output[0].name
    outs = {o.name: o for o in g.output}
    if out_name not in outs:
        raise ValueError(f"model has no output {out_name!r}; outputs: {list(outs)}")
    out_type = outs[out_name].type.tensor_type.elem_type

    nodes, used = _prune(g, out_name)
    all_names = {t for n in nodes for t in (*n.input, *n.output)} | init_names
    clash = [t for t in all_names if t.startswith(_P) or t in (INPUT, *OUTPUTS)]
    if clash:
        raise ValueError(f"model tensor names clash with the contract: {clash[:5]}")

    h, w = spec.native_size
    inits = [
        _const("rgb_starts", np.array([0], np.int64)),
        _const("rgb_ends", np.array([3], np.int64)),
        _const("channel_axis", np.array([3], np.int64)),
        _const("batch_channels", np.array([1, 3], np.int64)),
        _const("native_sizes", np.array([1, 3, h, w], np.int64)),
        _const("mean", np.array(spec.mean, np.float32).reshape(1, 3, 1, 1)),
        _const("std", np.array(spec.std, np.float32).reshape(1, 3, 1, 1)),
        _const("one", np.array(1.0, np.float32)),
        _const("c255", np.array(255.0, np.float32)),
        _const("zero", np.array(0.0, np.float32)),
        _const("half", np.array(0.5, np.float32)),
        _const("tiny", np.array(1e-12, np.float32)),
        _const("ones_2", np.array([1, 1], np.int64)),
        _const("squeeze_axes", np.array([1], np.int64)),
    ]
    resize_attrs = dict(mode="linear", antialias=0, coordinate_transformation_mode="half_pixel")

    def n(op: str, inputs: list[str], output: str, **attrs: Any) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [output], name=_P + output.removeprefix(_P), **attrs)

    P = _P
    size_nodes = [
        n("Cast", [SIZE], P + "size_i64", to=TensorProto.INT64),
        n("Concat", [P + "batch_channels", P + "size_i64"], P + "model_sizes", axis=0),
    ] if spec.dynamic else []
    pre = [*size_nodes,
        # Cast first, then work in float to the end: the WebGPU EP has no uint8
        # kernels, so only the Casts at the edges touch uint8 (measured natively on
        # an H200: ISNet 45.8 -> 39.1 ms without the CPU round trips).
        n("Cast", [INPUT], P + "rgba_f", to=TensorProto.FLOAT),
        n("Slice", [P + "rgba_f", P + "rgb_starts", P + "rgb_ends", P + "channel_axis"],
          P + "rgb_f"),
        n("Transpose", [P + "rgb_f"], P + "nchw", perm=[0, 3, 1, 2]),
        n("Resize", [P + "nchw", "", "", P + ("model_sizes" if spec.dynamic else "native_sizes")],
          P + "small", **resize_attrs),
    ]
    if spec.scale == "max":
        # rembg divides by the max of the resized image. Floor of 1 grey level
        # so an all-black image gives zeros instead of NaN (rembg: NaN).
        pre += [
            n("ReduceMax", [P + "small"], P + "img_max", keepdims=1),
            n("Max", [P + "img_max", P + "one"], P + "img_max_safe"),
            n("Div", [P + "small", P + "img_max_safe"], P + "scaled"),
        ]
    else:
        pre.append(n("Div", [P + "small", P + "c255"], P + "scaled"))
    normed = model_in.name if in_type == TensorProto.FLOAT else P + "normed"
    pre += [
        n("Sub", [P + "scaled", P + "mean"], P + "centred"),
        n("Div", [P + "centred", P + "std"], normed),
    ]
    if in_type != TensorProto.FLOAT:  # e.g. an fp16 model
        pre.append(n("Cast", [normed], model_in.name, to=in_type))

    pred = out_name
    post: list[onnx.NodeProto] = []
    if out_type != TensorProto.FLOAT:
        post.append(n("Cast", [pred], P + "pred_f", to=TensorProto.FLOAT))
        pred = P + "pred_f"
    if spec.post == "minmax":
        post += [
            n("ReduceMin", [pred], P + "pred_min", keepdims=1),
            n("ReduceMax", [pred], P + "pred_max", keepdims=1),
            n("Sub", [P + "pred_max", P + "pred_min"], P + "pred_range"),
            # Guard a constant prediction (rembg would give NaN).
            n("Max", [P + "pred_range", P + "tiny"], P + "pred_range_safe"),
            n("Sub", [pred, P + "pred_min"], P + "pred_shift"),
            n("Div", [P + "pred_shift", P + "pred_range_safe"], P + "mask"),
        ]
    else:
        post.append(n("Identity", [pred], P + "mask"))
    post += [
        n("Shape", [INPUT], P + "in_hw", start=1, end=3),
        n("Concat", [P + "ones_2", P + "in_hw"], P + "full_sizes", axis=0),
        n("Resize", [P + "mask", "", "", P + "full_sizes"], P + "mask_full", **resize_attrs),
        n("Mul", [P + "mask_full", P + "c255"], P + "mask_255"),
        n("Clip", [P + "mask_255", P + "zero", P + "c255"], P + "mask_clip"),
        # +0.5 then the truncating Cast rounds (half up): the WebGPU EP has no Round,
        # which would put this float op on the CPU.
        n("Add", [P + "mask_clip", P + "half"], P + "mask_round"),
        n("Squeeze", [P + "mask_round", P + "squeeze_axes"], P + "alpha_f"),
        n("Cast", [P + "alpha_f"], "alpha", to=TensorProto.UINT8),
        n("Transpose", [P + "mask_round"], P + "alpha_nhwc", perm=[0, 2, 3, 1]),
        n("Concat", [P + "rgb_f", P + "alpha_nhwc"], P + "cutout_f", axis=3),
        n("Cast", [P + "cutout_f"], "cutout", to=TensorProto.UINT8),
    ]

    graph = helper.make_graph(
        [*pre, *nodes, *post],
        name,
        inputs=[helper.make_tensor_value_info(INPUT, TensorProto.UINT8, [1, "H", "W", 4]),
                *([helper.make_tensor_value_info(SIZE, TensorProto.INT32, [2])]
                  if spec.dynamic else [])],
        outputs=[
            helper.make_tensor_value_info("alpha", TensorProto.UINT8, [1, "H", "W"]),
            helper.make_tensor_value_info("cutout", TensorProto.UINT8, [1, "H", "W", 4]),
        ],
        # Only the constants this spec uses: onnxruntime warns about the others.
        initializer=[*(t for t in inits if t.name in {x for nd in (*pre, *post) for x in nd.input}),
                     *(t for t in g.initializer if t.name in used)],
        value_info=[v for v in g.value_info if v.name in used and v.name != model_in.name],
    )
    opsets = [helper.make_opsetid("", opset)] + [
        o for o in model.opset_import if o.domain not in ("", "ai.onnx")
    ]
    fused = helper.make_model(graph, opset_imports=opsets, producer_name="cutout.toolchain.fuse",
                              producer_version="1")
    fused.ir_version = max(MIN_IR_VERSION, model.ir_version)
    helper.set_model_props(fused, {"cutout.fusion": json.dumps(spec.to_dict(), sort_keys=True)})
    onnx.checker.check_model(fused, full_check=True)
    return fused


RESIZE_FILE = "resize.onnx"


def resize_model() -> onnx.ModelProto:
    """uint8 RGBA [1,H,W,4] + int32 size (h, w) -> uint8 RGBA [1,h,w,4], resized with
    onnxruntime's antialiased bilinear filter: the fused models' input, at their size."""
    P = _P
    nodes = [
        helper.make_node("Cast", [SIZE], [P + "size_i64"], to=TensorProto.INT64),
        helper.make_node("Concat", [P + "batch_channels", P + "size_i64"], [P + "sizes"], axis=0),
        helper.make_node("Cast", [INPUT], [P + "f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", [P + "f"], [P + "nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Resize", [P + "nchw", "", "", P + "sizes"], [P + "small"], mode="linear",
                         antialias=1, coordinate_transformation_mode="half_pixel"),
        helper.make_node("Round", [P + "small"], [P + "rounded"]),
        helper.make_node("Clip", [P + "rounded", P + "zero", P + "c255"], [P + "clipped"]),
        helper.make_node("Cast", [P + "clipped"], [P + "small_u8"], to=TensorProto.UINT8),
        helper.make_node("Transpose", [P + "small_u8"], ["resized"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes, "cutout_resize",
        inputs=[helper.make_tensor_value_info(INPUT, TensorProto.UINT8, [1, "H", "W", 4]),
                helper.make_tensor_value_info(SIZE, TensorProto.INT32, [2])],
        outputs=[helper.make_tensor_value_info("resized", TensorProto.UINT8, [1, "h", "w", 4])],
        initializer=[_const("batch_channels", np.array([1, 4], np.int64)),
                     _const("zero", np.array(0.0, np.float32)),
                     _const("c255", np.array(255.0, np.float32))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", MIN_OPSET)],
                              producer_name="cutout.toolchain.fuse", producer_version="1")
    model.ir_version = MIN_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def fuse_file(src: Path, dst: Path, spec: FusionSpec, name: str = "cutout",
              then: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None) -> bytes:
    """Fuse src into dst, passing the fused graph through `then` if given (a rewrite
    that needs its shapes); return the written bytes (deterministic for a given src)."""
    fused = fuse(onnx.load(str(src)), spec, name)
    if then is not None:
        fused = then(fused)
    return write_if_changed(Path(dst), fused.SerializeToString(deterministic=True))


def write_if_changed(dst: Path, data: bytes) -> bytes:
    """Write `data` to `dst` atomically, leaving an identical file (and its mtime) as is;
    return `data`."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not (dst.is_file() and dst.read_bytes() == data):
        tmp = dst.with_name(dst.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(dst)
    return data
