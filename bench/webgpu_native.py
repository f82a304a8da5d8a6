"""Shipped fused models on onnxruntime's native WebGPU EP (plugin) against the CPU EP.

onnxruntime's WebGPU execution provider ships on PyPI as a plugin
(`onnxruntime-ep-webgpu`, Dawn over Vulkan on Linux). Its WGSL kernels are the
ones onnxruntime-web's WebGPU EP runs in the browser, so on a real GPU it tells
which ops are covered, whether the numbers agree with the CPU EP (= the WASM
build's kernels) and what the GPU compute costs, without a browser.

For each mode (fast = U2-Netp, balanced = ISNet 1024^2, portrait = MODNet long
side 512) the models are fed as the product feeds them (`rgba` uint8 photo, `size`
from `cutout.modes.model_input_size`, session config `session.disable_quant_qdq=1`,
optimisation level "all") and measured:

* session creation, first run (shader compilation), warm median/min of N runs;
* the same on the CPU EP, whose alphas are the numeric reference
  (max / mean abs diff of the uint8 alpha, IoU of alpha > 127);
* node placement: onnxruntime's verbose "Node placements" log lines, the per-node
  provider from the profiler, and whether `session.disable_cpu_ep_fallback=1` loads;
* per model, a `gpupost` variant made here from the shipped file (`gpu_post_variant`):
  the fused pre/post rewritten so that no compute node falls back to the CPU EP
  (graphs fused since 4eda2f0 already are: the variant is recorded as skipped, with
  the reason, and so are the configurations that need it);
* for placement runs, `cpu_placement_check`: the nodes the verbose log puts on the CPU
  EP, with their output dtypes from the profiler, and whether all are int shape arithmetic;
* for ISNet, variants that might be faster: DQ kept (not folded), optimisation
  levels, NCHW layout, validation off, graph capture, and an fp16-compute graph made
  here from the shipped file (`fp16_variant`: weights still int8 + DequantizeLinear,
  a Cast to fp16 after each DQ, fp16 biases, Casts at the fused pre/post boundary,
  graph inputs/outputs unchanged), alone and with `gpupost`. Group `isnet-fp16` runs only
  the fp16 graph (and graph capture) of these.
* group `quality` (Quality mode, `MODES["quality"]`): in one process per EP, per run
  the product's Quality step (`native/pipeline.predict_mask` with `mirror`, the
  engine's jobs.py): ISNet on the feed, `flip.onnx` on the CPU EP, ISNet on the
  flipped feed (alpha only), `mirror.onnx` on the CPU EP (pass graphs from
  `cutout.toolchain.passes.graph_bytes()`), each part timed, alternating with one
  Balanced run (ISNet on the feed) in the same session; the Quality alpha against
  the same step with ISNet on the CPU EP (`run_quality`).

Every configuration runs in its own child process: a crash or an unsupported op
is recorded for that configuration only, and each first run is a cold start.

    python bench/webgpu_native.py --models-dir build/models --out results.json \
        [--feed photo|model] [--modes fast,balanced,portrait] [--groups main,isnet-variants,isnet-fp16,quality] \
        [--warm 15] [--cpu-warm 9] [--logs-tar logs.tar.gz]

Needs onnxruntime >= 1.24.4, onnxruntime-ep-webgpu, numpy, onnx, Pillow and a
Vulkan loader (libvulkan.so.1) with a GPU driver; NVIDIA's Vulkan ICD
(libGLX_nvidia.so.0) also needs glvnd's libGLdispatch.so.0 (Debian/Ubuntu libglvnd0),
else Dawn finds no adapter. Each child's NVIDIA on-disk shader cache is a fresh folder
(`__GL_SHADER_DISK_CACHE_PATH`), so `first_s` is a cold shader compile unless the
config reuses an earlier one's folder (`product-driver-cache-warm`). `--no-webgpu`
runs the CPU part only (a plumbing check where no GPU is available).

How it ran on the H200 (docs/BENCHMARKS.md, 2026-12-02), from the repo root, with
the models copied to .bench_models/ (bench/results/2026-12-02-webgpu-h200.json):

    pip install --target /tmp/site onnxruntime_ep_webgpu-0.4.0-*.whl
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/webgpu_native.py \
        --models-dir .bench_models --feed model --out results.json \
        --logs-tar verbose_logs.tar.gz --warm 30 --cpu-warm 9 --child-timeout 120

The final shipped models (4eda2f0, pre/post in float) ran from the repo root with the
models carried in build/models (bench/results/2026-12-02-webgpu-h200-final.json):

    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/webgpu_native.py \
        --models-dir build/models --feed model --groups main,isnet-fp16 --out results.json \
        --logs-tar verbose_logs.tar.gz --warm 30 --cpu-warm 9 --child-timeout 120

`--feed photo` (the default) is for graphs that resize the photo themselves.
"""

from __future__ import annotations

import argparse
import ctypes.util
import datetime as dt
import gzip
import hashlib
import importlib.metadata as md
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pysrc"))

from cutout.modes import MODES, model_input_size  # noqa: E402

WEBGPU_EP = "WebGpuExecutionProvider"
CPU_EP = "CPUExecutionProvider"
# The product's session config (pysrc/cutout/engine/_js.py, native/pipeline.py).
PRODUCT_CONFIG: dict[str, str] = {"session.disable_quant_qdq": "1"}
NVIDIA_ICD = "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"

# name -> (sample file, resize to (w, h) or None). 854x480 is the evaluation photo size.
INPUTS: dict[str, tuple[str, tuple[int, int] | None]] = {
    "astronaut-512x512": ("samples/astronaut.jpg", None),
    "astronaut-854x480": ("samples/astronaut.jpg", (854, 480)),
    "coffee-854x480": ("samples/coffee.jpg", (854, 480)),
}
PRIMARY_INPUT = "astronaut-854x480"
MODE_ORDER = ("fast", "balanced", "portrait")

# Ops onnxruntime puts on CPU on purpose when they only compute shapes/sizes.
SHAPE_OPS = {
    "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape",
    "Range", "ConstantOfShape", "Size", "Expand", "Mul", "Add", "Sub", "Div", "Floor", "Ceil",
}


# ---------------------------------------------------------------- inputs


def load_input(name: str) -> np.ndarray:
    """H x W x 4 uint8 as the product decodes a photo (EXIF upright, A = 255)."""
    from PIL import Image, ImageOps

    path, size = INPUTS[name]
    with Image.open(ROOT / path) as im:
        rgb = ImageOps.exif_transpose(im).convert("RGB")
        if size is not None:
            rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(rgb.convert("RGBA")).copy()


_RESIZE: list[Any] = []


def resize_session() -> Any:
    """The toolchain's separate antialiased resize graph (`cutout.toolchain.fuse.resize_model`,
    where the working tree has it) on the CPU EP, as the pipeline runs it."""
    if not _RESIZE:
        import onnxruntime as ort

        from cutout.toolchain.fuse import resize_model  # type: ignore[attr-defined]

        _RESIZE.append(ort.InferenceSession(resize_model().SerializeToString(), providers=[CPU_EP]))
    return _RESIZE[0]


def feeds_for(mode_name: str, rgba: np.ndarray, input_names: list[str], feed: str = "photo",
              native_hw: tuple[int, int] = (320, 320)) -> tuple[dict[str, np.ndarray], float | None]:
    """The feeds the native pipeline builds for `mode_name` (inputs here are below
    MAX_WORK_SIDE), and the resize graph's time for feed="model".

    feed="photo": the photo at its own size, the graph resizes inside (committed
    pipeline of 2026-11-25). feed="model": the photo first shrunk to the model's input
    size by the separate resize graph on the CPU EP (the pipeline as changed on
    2026-12-02: the fused graphs no longer antialias).
    """
    mode = MODES[mode_name]
    h, w = rgba.shape[:2]
    dynamic = "size" in input_names
    if dynamic:
        if mode.model_side is None:
            raise ValueError(f"mode {mode_name} has no model_side for a dynamic model")
        fh, fw = model_input_size(w, h, mode.model_side, mode.keep_aspect)
    else:
        fh, fw = native_hw
    resize_s = None
    if feed == "photo":
        feeds: dict[str, np.ndarray] = {"rgba": np.ascontiguousarray(rgba)[None]}
    else:
        t = time.perf_counter()
        (small,) = resize_session().run(None, {"rgba": np.ascontiguousarray(rgba)[None],
                                               "size": np.array((fh, fw), np.int32)})
        resize_s = time.perf_counter() - t
        feeds = {"rgba": small}
    if dynamic:
        feeds["size"] = np.array((fh, fw), np.int32)
    return feeds, resize_s


# ---------------------------------------------------------------- fp16 variant


def fp16_variant(src: Path, dst: Path) -> dict[str, Any]:
    """fp16-compute copy of a fused graph, graph inputs/outputs unchanged.

    The model body (every node not named `cutout/...`, i.e. not the fused pre/post)
    computes in fp16: float initializers it reads become fp16 (except DequantizeLinear
    scales and Resize roi/scales), each DequantizeLinear output gets a Cast to fp16
    (weights stay int8 in the file; with `session.disable_quant_qdq=1` DQ + Cast fold
    into fp16 weights at load), float Casts inside the body cast to fp16, and Casts
    are inserted where a float tensor crosses between pre/post and the body.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    inferred = onnx.shape_inference.infer_shapes(model)
    elem: dict[str, int] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        elem[vi.name] = vi.type.tensor_type.elem_type
    g = model.graph
    for t in g.initializer:
        elem[t.name] = t.data_type

    def in_body(node: onnx.NodeProto) -> bool:
        return not node.name.startswith("cutout/")

    graph_outputs = {o.name for o in g.output}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for n in g.node:
        for i, x in enumerate(n.input):
            if x:
                consumers.setdefault(x, []).append((n, i))

    def keep_fp32_slot(node: onnx.NodeProto, idx: int) -> bool:
        return (node.op_type == "DequantizeLinear") or (node.op_type == "Resize" and idx in (1, 2))

    # 1. float initializers read only by body nodes at fp16-able slots -> fp16
    converted_inits = 0
    for t in g.initializer:
        if t.data_type != TensorProto.FLOAT:
            continue
        uses = consumers.get(t.name, [])
        if uses and all(in_body(n) and not keep_fp32_slot(n, i) for n, i in uses):
            arr = numpy_helper.to_array(t).astype(np.float16)
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
            elem[t.name] = TensorProto.FLOAT16
            converted_inits += 1
    # 2. float Constant nodes in the body -> fp16; float Casts in the body -> fp16
    fp32_constants: set[str] = set()
    for n in g.node:
        if not in_body(n):
            continue
        if n.op_type == "Constant" and n.attribute[0].name == "value":
            t = n.attribute[0].t
            uses = consumers.get(n.output[0], [])
            if t.data_type == TensorProto.FLOAT:
                if any(keep_fp32_slot(c, i) for c, i in uses):
                    fp32_constants.add(n.output[0])
                else:
                    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16)))
                    elem[n.output[0]] = TensorProto.FLOAT16
        if n.op_type == "Cast":
            to = next(a for a in n.attribute if a.name == "to")
            if to.i == TensorProto.FLOAT:
                to.i = TensorProto.FLOAT16
    # 3. Casts where fp32 meets the fp16 body. Producer outside the body (pre-processing)
    #    or a DequantizeLinear: body readers get a Cast to fp16. Producer in the body:
    #    it now writes fp16 under a new name; fp32 readers (post-processing, Resize
    #    scales) and graph outputs keep the old name, written by a Cast to fp32.
    casts: dict[str, list[onnx.NodeProto]] = {}  # producer output -> Casts to insert after it
    for n in list(g.node):
        for o in list(n.output):
            if elem.get(o) != TensorProto.FLOAT or o in fp32_constants:
                continue
            uses = consumers.get(o, [])
            half_uses = [(c, i) for c, i in uses if in_body(c) and not keep_fp32_slot(c, i)]
            full_uses = [(c, i) for c, i in uses if not in_body(c) or keep_fp32_slot(c, i)]
            if n.op_type == "DequantizeLinear" or not in_body(n):
                if half_uses:
                    half = f"fp16/{o}"
                    casts.setdefault(o, []).append(
                        helper.make_node("Cast", [o], [half], f"fp16/{o}/to_f16", to=TensorProto.FLOAT16))
                    for c, i in half_uses:
                        c.input[i] = half
            elif full_uses or o in graph_outputs:
                half = f"fp16/{o}"
                n.output[list(n.output).index(o)] = half
                for c, i in half_uses:
                    c.input[i] = half
                casts.setdefault(half, []).append(
                    helper.make_node("Cast", [half], [o], f"fp16/{o}/to_f32", to=TensorProto.FLOAT))
    order: list[onnx.NodeProto] = []
    for n in g.node:
        order.append(n)
        for o in n.output:
            order.extend(casts.get(o, []))
    n_casts = sum(len(v) for v in casts.values())
    del g.node[:]
    g.node.extend(order)
    del g.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return {"src": str(src), "bytes": dst.stat().st_size, "fp16_initializers": converted_inits,
            "casts_inserted": n_casts, "nodes": len(g.node)}


class VariantNotApplicable(Exception):
    """The variant's rewrite does not apply to this file; the reason is recorded and the
    configurations that need the variant are skipped."""


def gpu_post_variant(src: Path, dst: Path) -> dict[str, Any]:
    """The fused pre/post rewritten so that every compute node has a WebGPU kernel.

    onnxruntime 1.30's WebGPU EP has no kernel for Round, nor for Slice, Transpose,
    Concat and Squeeze on uint8, so the shipped graphs run those five nodes on the CPU
    with two extra GPU<->CPU round trips. Here: Cast the whole `rgba` to float, then
    Slice; Round(x) -> Floor(x + 0.5) (x >= 0 after the Clip; differs from Round's
    half-to-even only at exact .5, by 1); Squeeze/Transpose/Concat in float; Cast to
    uint8 last. Graph inputs and outputs are unchanged.

    Graphs fused since 4eda2f0 already do this (`cutout/rgba_f` Casts the whole `rgba`
    first, the pre/post stay in float until the final Casts): VariantNotApplicable.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    by_name = {n.name: n for n in g.node}
    first_cast = next((n for n in g.node if n.op_type == "Cast" and list(n.input) == ["rgba"]), None)
    if first_cast is not None and "cutout/rgb_u8" not in by_name and any(
            a.name == "to" and a.i == TensorProto.FLOAT for a in first_cast.attribute):
        raise VariantNotApplicable(
            f"pre/post already in float: {first_cast.name} Casts the whole uint8 rgba to float first and "
            "the graph stays in float until the final Casts to uint8 (no uint8 Slice/Squeeze/Transpose/"
            "Concat, no Round): nothing to rewrite")
    need = ["cutout/rgb_u8", "cutout/rgb_f", "cutout/mask_round", "cutout/alpha_nchw", "cutout/alpha",
            "cutout/alpha_nhwc", "cutout/cutout"]
    missing = [n for n in need if n not in by_name]
    if missing:
        raise VariantNotApplicable(f"not a fused graph of the expected shape: missing {missing}")
    sl, cast_in = by_name["cutout/rgb_u8"], by_name["cutout/rgb_f"]
    rnd, cast_a = by_name["cutout/mask_round"], by_name["cutout/alpha_nchw"]
    sq, tr, cat = by_name["cutout/alpha"], by_name["cutout/alpha_nhwc"], by_name["cutout/cutout"]
    if rnd.op_type == "Round":
        g.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "cutout/gp_half"))
    rgb_f = cast_in.output[0]
    repl: dict[str, list[onnx.NodeProto]] = {
        sl.name: [
            helper.make_node("Cast", [sl.input[0]], ["cutout/gp_rgba_f"], "cutout/gp_rgba_f", to=TensorProto.FLOAT),
            helper.make_node("Slice", ["cutout/gp_rgba_f", *sl.input[1:]], [rgb_f], "cutout/gp_rgb_f"),
        ],
        cast_in.name: [],
        # Round (graphs of 2026-11-25): Floor(x + 0.5). Add(x, 0.5) (2026-12-02, rounding
        # by the truncating Cast): kept, the final Casts truncate the same way.
        rnd.name: [
            helper.make_node("Add", [rnd.input[0], "cutout/gp_half"], ["cutout/gp_plus_half"], "cutout/gp_plus_half"),
            helper.make_node("Floor", ["cutout/gp_plus_half"], [rnd.output[0]], "cutout/gp_floor"),
        ] if rnd.op_type == "Round" else [rnd],
        cast_a.name: [],
        sq.name: [
            helper.make_node("Squeeze", [rnd.output[0], *sq.input[1:]], ["cutout/gp_alpha_f"], "cutout/gp_alpha_f"),
            helper.make_node("Cast", ["cutout/gp_alpha_f"], [sq.output[0]], "cutout/gp_alpha", to=TensorProto.UINT8),
        ],
        tr.name: [helper.make_node("Transpose", [rnd.output[0]], ["cutout/gp_alpha_nhwc_f"], "cutout/gp_alpha_nhwc_f",
                                   perm=list(next(a for a in tr.attribute if a.name == "perm").ints))],
        cat.name: [
            helper.make_node("Concat", [rgb_f, "cutout/gp_alpha_nhwc_f"], ["cutout/gp_cutout_f"], "cutout/gp_cutout_f",
                             axis=next(a for a in cat.attribute if a.name == "axis").i),
            helper.make_node("Cast", ["cutout/gp_cutout_f"], [cat.output[0]], "cutout/gp_cutout", to=TensorProto.UINT8),
        ],
    }
    nodes: list[onnx.NodeProto] = []
    for n in g.node:
        nodes.extend(repl.get(n.name, [n]))
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return {"src": str(src), "bytes": dst.stat().st_size, "nodes": len(g.node)}


# ---------------------------------------------------------------- child: one config


_REGISTERED: list[bool] = []


def register_webgpu() -> Any:
    """Register the plugin library once per process; the WebGPU EP device."""
    import onnxruntime as ort
    import onnxruntime_ep_webgpu as webgpu_ep

    if not _REGISTERED:
        ort.register_execution_provider_library("webgpu", webgpu_ep.get_library_path())
        _REGISTERED.append(True)
    dev = next((d for d in ort.get_ep_devices() if d.ep_name == webgpu_ep.get_ep_name()), None)
    if dev is None:
        raise RuntimeError("no WebGPU EP device (no Vulkan loader / GPU driver?)")
    return dev


def make_session(spec: dict[str, Any], model_path: Path, profile_prefix: str | None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[spec["opt_level"]]
    for k, v in spec["session_config"].items():
        so.add_session_config_entry(k, v)
    if spec.get("verbose"):
        so.log_severity_level = 0
        so.log_verbosity_level = 0
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if spec["ep"] == "webgpu":
        dev = register_webgpu()
        so.add_provider_for_devices([dev], dict(spec["provider_options"]))
        return ort.InferenceSession(str(model_path), sess_options=so)
    return ort.InferenceSession(str(model_path), sess_options=so, providers=[CPU_EP])


def compare_alpha(got: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    d = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    fg_got, fg_ref = got > 127, ref > 127
    union = int(np.logical_or(fg_got, fg_ref).sum())
    inter = int(np.logical_and(fg_got, fg_ref).sum())
    return {
        "max_abs_diff": int(d.max()),
        "mean_abs_diff": float(d.mean()),  # uint8 units (0..255)
        "frac_px_diff_gt1": float((d > 1).mean()),
        "iou_gt127": 1.0 if union == 0 else inter / union,
        "fg_frac_ref": float(fg_ref.mean()),
        "fg_frac_got": float(fg_got.mean()),
    }


def summarise_profile(path: Path) -> dict[str, Any]:
    """Per-node provider as the profiler saw the runs (names are post-optimisation), and
    the host-side time per provider within the last run (a WebGPU node's time is its
    dispatch on the host, not GPU time; a Memcpy to host includes waiting for the GPU)."""
    events = json.loads(path.read_text())
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    last = runs[-1] if runs else None
    nodes: dict[str, dict[str, Any]] = {}
    last_ms: dict[str, float] = {}
    memcpy_last_ms: dict[str, float] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        prov = args.get("provider")
        if prov is None:
            continue
        name = e["name"][: -len("_kernel_time")]
        op = args.get("op_name", "?")
        if last and last["ts"] <= e["ts"] <= last["ts"] + last["dur"]:
            last_ms[prov] = last_ms.get(prov, 0.0) + float(e.get("dur", 0)) / 1e3
            if op.startswith("Memcpy"):
                memcpy_last_ms[name] = float(e.get("dur", 0)) / 1e3
        if name in nodes:
            continue
        out_size = int(args.get("output_size", 0) or 0)
        shapes = args.get("output_type_shape", [])
        nodes[name] = {"op": op, "provider": prov, "output_size": out_size, "output_type_shape": shapes}
    by_provider: dict[str, int] = {}
    for n in nodes.values():
        by_provider[n["provider"]] = by_provider.get(n["provider"], 0) + 1
    cpu_nodes = []
    for name, n in nodes.items():
        if n["provider"] != CPU_EP:
            continue
        dtypes = {k for d in n["output_type_shape"] for k in d}
        small_int = n["output_size"] <= 1024 and dtypes <= {"int64", "int32"}
        kind = "shape" if (n["op"] in SHAPE_OPS and small_int) else "compute"
        cpu_nodes.append({"name": name, **n, "kind": kind})
    memcpy = sorted(name for name, n in nodes.items() if n["op"].startswith("Memcpy"))
    return {
        "nodes_by_provider": by_provider,
        "cpu_nodes": cpu_nodes,
        "cpu_compute_nodes": [c["name"] for c in cpu_nodes if c["kind"] == "compute"],
        "cpu_shape_nodes": sum(1 for c in cpu_nodes if c["kind"] == "shape"),
        "memcpy_nodes": memcpy,
        "profiled_runs": len(runs),
        "last_run_ms": last["dur"] / 1e3 if last else None,
        "last_run_host_ms_by_provider": last_ms,
        "last_run_memcpy_ms": memcpy_last_ms,
    }


_PASSES: dict[str, Any] = {}
QUALITY_PARTS = ("model", "flip", "model_mirrored", "mirror")


def pass_session(name: str) -> Any:
    """A Quality pass graph (`flip.onnx`, `mirror.onnx`) on the CPU EP, as the product
    runs it (native/pipeline._pass_session; WASM in the browser)."""
    if name not in _PASSES:
        import onnxruntime as ort

        from cutout.toolchain.passes import graph_bytes

        _PASSES[name] = ort.InferenceSession(graph_bytes()[name], providers=[CPU_EP])
    return _PASSES[name]


def run_quality(sess: Any, spec: dict[str, Any], inp: str, feeds: dict[str, np.ndarray],
                row: dict[str, Any], refs: dict[str, np.ndarray], saved: dict[str, np.ndarray]) -> None:
    """Quality's model work for one input: a cold Quality step, then `warm` times one
    Balanced run (ISNet on the feed, alpha + cutout) and one Quality step, alternating.
    Times in `row`: the Quality step (first_s, median_s, min_s), its parts, Balanced."""
    from cutout.toolchain.passes import FLIP_FILE, MIRROR_FILE

    def quality() -> tuple[np.ndarray, dict[str, float]]:
        t0 = time.perf_counter()
        alpha, cutout = sess.run(["alpha", "cutout"], feeds)
        t1 = time.perf_counter()
        (flipped,) = pass_session(FLIP_FILE).run(None, {"x": feeds["rgba"]})
        t2 = time.perf_counter()
        (mirrored,) = sess.run(["alpha"], {**feeds, "rgba": flipped})
        t3 = time.perf_counter()
        merged, _ = pass_session(MIRROR_FILE).run(None, {"cutout": cutout, "mirrored": mirrored})
        t4 = time.perf_counter()
        return merged[0], {"model": t1 - t0, "flip": t2 - t1, "model_mirrored": t3 - t2,
                           "mirror": t4 - t3, "total": t4 - t0}

    try:
        if not _PASSES:
            t = time.perf_counter()
            pass_session(FLIP_FILE), pass_session(MIRROR_FILE)
            row["pass_sessions_create_s"] = time.perf_counter() - t
        q_alpha, first = quality()
        row["first_s"] = first["total"]
        row["first_parts_s"] = {k: first[k] for k in QUALITY_PARTS}
        totals: list[float] = []
        parts: dict[str, list[float]] = {k: [] for k in QUALITY_PARTS}
        balanced: list[float] = []
        for _ in range(spec["warm"]):
            t = time.perf_counter()
            b_alpha, b_cutout = sess.run(["alpha", "cutout"], feeds)
            balanced.append(time.perf_counter() - t)
            q_alpha, times = quality()
            totals.append(times["total"])
            for k in QUALITY_PARTS:
                parts[k].append(times[k])
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}"
        return
    if not totals:
        return
    row["warm_s"] = totals
    row["median_s"] = statistics.median(totals)
    row["min_s"] = min(totals)
    row["parts"] = {k: {"median_s": statistics.median(v), "min_s": min(v), "warm_s": v}
                    for k, v in parts.items()}
    row["balanced"] = {"median_s": statistics.median(balanced), "min_s": min(balanced), "warm_s": balanced}
    b_alpha, b_cutout, rgba = b_alpha[0], b_cutout[0], feeds["rgba"][0]
    row["alpha_shape"] = list(q_alpha.shape)
    row["cutout_consistent"] = bool(
        np.array_equal(b_cutout[..., :3], rgba[..., :3]) and np.array_equal(b_cutout[..., 3], b_alpha))
    row["quality_vs_balanced"] = compare_alpha(q_alpha, b_alpha)
    if spec.get("save_ref"):
        saved[inp], saved[f"{inp}--balanced"] = q_alpha, b_alpha
    elif inp in refs:
        row["vs_cpu"] = compare_alpha(q_alpha, refs[inp])
        row["balanced_vs_cpu"] = compare_alpha(b_alpha, refs[f"{inp}--balanced"])


def run_child(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    import onnxruntime as ort

    res: dict[str, Any] = {"name": spec["name"], "ok": False}
    model_path = Path(spec["model_path"])
    prof_prefix = str(workdir / re.sub(r"[^A-Za-z0-9]+", "_", spec["name"])) if spec.get("profile") else None
    t0 = time.perf_counter()
    try:
        sess = make_session(spec, model_path, prof_prefix)
    except Exception as e:  # an unsupported op or a refused fallback lands here
        res["stage"] = "create"
        res["error"] = f"{type(e).__name__}: {e}"
        return res
    res["create_s"] = time.perf_counter() - t0
    res["providers"] = sess.get_providers()
    if spec["ep"] == "webgpu" and WEBGPU_EP not in res["providers"]:
        # onnxruntime's Python wrapper falls back to CPU silently when the EP fails
        res["stage"] = "create"
        res["error"] = f"WebGPU EP not in the session's providers {res['providers']} (silent CPU fallback)"
        return res
    input_names = [i.name for i in sess.get_inputs()]
    fusion = json.loads(sess.get_modelmeta().custom_metadata_map.get("cutout.fusion", "{}"))
    nh, nw = fusion.get("native_size", [320, 320])
    native_hw = (int(nh), int(nw))
    ref_file = workdir / f"ref-{spec['ref_model']}.npz"
    refs = dict(np.load(ref_file)) if ref_file.is_file() and not spec.get("save_ref") else {}
    saved: dict[str, np.ndarray] = {}
    res["inputs"] = {}
    runs_done = 0
    for inp in spec["inputs"]:
        photo = load_input(inp)
        feeds, resize_s = feeds_for(spec["mode"], photo, input_names, spec.get("feed", "photo"), native_hw)
        rgba = feeds["rgba"][0]
        row: dict[str, Any] = {
            "image_hw": list(photo.shape[:2]),
            "fed_rgba_hw": list(rgba.shape[:2]),
            "model_hw": feeds["size"].tolist() if "size" in feeds else "fixed in graph",
        }
        if resize_s is not None:
            row["resize_graph_cpu_s"] = resize_s
        res["inputs"][inp] = row
        if spec.get("quality"):
            run_quality(sess, spec, inp, feeds, row, refs, saved)
            continue
        try:
            t = time.perf_counter()
            outs = sess.run(None, feeds)
            row["first_s"] = time.perf_counter() - t
            runs_done += 1
            times = []
            for _ in range(spec["warm"]):
                t = time.perf_counter()
                outs = sess.run(None, feeds)
                times.append(time.perf_counter() - t)
            runs_done += spec["warm"]
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}"
            continue
        if times:
            row["warm_s"] = times
            row["median_s"] = statistics.median(times)
            row["min_s"] = min(times)
        names = [o.name for o in sess.get_outputs()]
        alpha = outs[names.index("alpha")][0]
        cutout = outs[names.index("cutout")][0]
        row["alpha_shape"] = list(alpha.shape)
        row["cutout_consistent"] = bool(
            np.array_equal(cutout[..., :3], rgba[..., :3]) and np.array_equal(cutout[..., 3], alpha)
        )
        if spec.get("save_ref"):
            saved[inp] = alpha
        elif inp in refs:
            row["vs_cpu"] = compare_alpha(alpha, refs[inp])
    if saved:
        np.savez(ref_file, **saved)
    if prof_prefix:
        prof = sess.end_profiling()
        try:
            res["profile"] = summarise_profile(Path(prof))
        except Exception as e:
            res["profile"] = {"error": f"{type(e).__name__}: {e}"}
    res["ok"] = all("error" not in r for r in res["inputs"].values())
    res["ort_version"] = ort.__version__
    return res


# ---------------------------------------------------------------- parent


def plan(models_dir: Path, workdir: Path, groups: set[str], modes: list[str], warm: int,
         cpu_warm: int, webgpu: bool, feed: str = "photo") -> list[dict[str, Any]]:
    """The configurations, in run order. Variant files (`<model>-gpupost.onnx`,
    `isnet-fp16*.onnx`) are made in `workdir` by `make_variants` beforehand."""
    specs: list[dict[str, Any]] = []
    all_inputs = list(INPUTS)
    one = [PRIMARY_INPUT]
    no_fallback = {**PRODUCT_CONFIG, "session.disable_cpu_ep_fallback": "1"}

    def spec(name: str, mode: str, ep: str, inputs: list[str], n: int, variant: str = "shipped",
             **kw: Any) -> dict[str, Any]:
        model = MODES[mode].model
        path = models_dir / f"{model}.onnx" if variant == "shipped" else workdir / f"{model}-{variant}.onnx"
        s = {
            "name": name, "mode": mode, "model": model, "ref_model": model,
            "model_path": str(path), "variant": variant,
            "ep": ep, "opt_level": "all", "session_config": dict(PRODUCT_CONFIG),
            "provider_options": {}, "inputs": inputs, "warm": n, "feed": feed,
            # NVIDIA driver's on-disk shader cache: a fresh folder per config (cold
            # compile) unless a config names the folder of an earlier one.
            "shader_cache": name,
        }
        s.update(kw)
        return s

    if "main" in groups:
        for mode in modes:
            m = MODES[mode].model
            specs.append(spec(f"{m}/cpu/product", mode, "cpu", all_inputs, cpu_warm, save_ref=True))
            if not webgpu:
                continue
            specs += [
                spec(f"{m}/webgpu/product", mode, "webgpu", all_inputs, warm),
                spec(f"{m}/webgpu/product-driver-cache-warm", mode, "webgpu", one, 5,
                     shader_cache=f"{m}/webgpu/product"),
                spec(f"{m}/webgpu/placement", mode, "webgpu", one, 3, verbose=True, profile=True),
                spec(f"{m}/webgpu/no-cpu-fallback", mode, "webgpu", one, 3, session_config=no_fallback),
                spec(f"{m}-gpupost/webgpu/product", mode, "webgpu", all_inputs, warm, variant="gpupost"),
                spec(f"{m}-gpupost/webgpu/placement", mode, "webgpu", one, 3, variant="gpupost",
                     verbose=True, profile=True),
                spec(f"{m}-gpupost/webgpu/no-cpu-fallback", mode, "webgpu", one, 3, variant="gpupost",
                     session_config=no_fallback),
                spec(f"{m}-gpupost/cpu/product", mode, "cpu", one, 1, variant="gpupost"),
            ]
    if "isnet-variants" in groups and "balanced" in modes and webgpu:
        b = "balanced"
        specs += [
            spec("isnet/webgpu/dq-kept", b, "webgpu", one, warm, session_config={}),
            spec("isnet/webgpu/opt-basic", b, "webgpu", one, warm, opt_level="basic"),
            spec("isnet/webgpu/opt-extended", b, "webgpu", one, warm, opt_level="extended"),
            spec("isnet/webgpu/layout-nchw", b, "webgpu", one, warm, provider_options={"preferredLayout": "NCHW"}),
            spec("isnet/webgpu/validation-disabled", b, "webgpu", one, warm,
                 provider_options={"validationMode": "disabled"}),
            spec("isnet-fp16/webgpu/product", b, "webgpu", all_inputs, warm, variant="fp16"),
            spec("isnet-fp16/webgpu/placement", b, "webgpu", one, 3, variant="fp16", verbose=True, profile=True),
            spec("isnet-fp16/webgpu/layout-nchw", b, "webgpu", one, warm, variant="fp16",
                 provider_options={"preferredLayout": "NCHW"}),
            spec("isnet-fp16/cpu/product", b, "cpu", one, 1, variant="fp16"),
            spec("isnet-fp16-gpupost/webgpu/product", b, "webgpu", all_inputs, warm, variant="fp16-gpupost"),
            spec("isnet-fp16-gpupost/webgpu/placement", b, "webgpu", one, 3, variant="fp16-gpupost",
                 verbose=True, profile=True),
            # last: the likeliest to fail (needs every node on the GPU)
            spec("isnet/webgpu/graph-capture", b, "webgpu", one, warm, provider_options={"enableGraphCapture": "1"}),
            spec("isnet-gpupost/webgpu/graph-capture", b, "webgpu", one, warm, variant="gpupost",
                 provider_options={"enableGraphCapture": "1"}),
        ]
    if "isnet-fp16" in groups and "balanced" in modes and webgpu:
        # the fp16-compute graph alone (a subset of isnet-variants), and graph capture
        b = "balanced"
        specs += [
            spec("isnet-fp16/webgpu/product", b, "webgpu", all_inputs, warm, variant="fp16"),
            spec("isnet-fp16/webgpu/placement", b, "webgpu", one, 3, variant="fp16", verbose=True, profile=True),
            spec("isnet-fp16/cpu/product", b, "cpu", one, 1, variant="fp16"),
            spec("isnet-fp16-gpupost/webgpu/product", b, "webgpu", all_inputs, warm, variant="fp16-gpupost"),
            spec("isnet/webgpu/graph-capture", b, "webgpu", one, warm, provider_options={"enableGraphCapture": "1"}),
            spec("isnet-fp16/webgpu/graph-capture", b, "webgpu", one, warm, variant="fp16",
                 provider_options={"enableGraphCapture": "1"}),
        ]
    if "quality" in groups:
        # Quality (ISNet twice + the CPU pass graphs) next to Balanced, in one process per EP
        q = "quality"
        specs += [
            spec("isnet-quality/cpu/product", q, "cpu", all_inputs, cpu_warm, save_ref=True, quality=True,
                 ref_model="isnet-quality"),
            spec("isnet-quality/webgpu/product", q, "webgpu", all_inputs, warm, quality=True,
                 ref_model="isnet-quality"),
        ]
    seen: set[str] = set()
    specs = [s for s in specs if not (s["name"] in seen or seen.add(s["name"]))]  # type: ignore[func-returns-value]
    return specs


def make_variants(models_dir: Path, workdir: Path, groups: set[str], modes: list[str]) -> dict[str, Any]:
    """gpupost for every measured model; fp16 and fp16-gpupost of ISNet (isnet-variants,
    isnet-fp16). A variant that does not apply is recorded as {"skipped": reason}."""
    made: dict[str, Any] = {}
    jobs: list[tuple[str, Any, Path, Path]] = []
    if "main" in groups:
        for mode in modes:
            m = MODES[mode].model
            jobs.append((f"{m}-gpupost", gpu_post_variant, models_dir / f"{m}.onnx", workdir / f"{m}-gpupost.onnx"))
    if groups & {"isnet-variants", "isnet-fp16"} and "balanced" in modes:
        jobs.append(("isnet-fp16", fp16_variant, models_dir / "isnet.onnx", workdir / "isnet-fp16.onnx"))
        jobs.append(("isnet-fp16-gpupost", gpu_post_variant, workdir / "isnet-fp16.onnx",
                     workdir / "isnet-fp16-gpupost.onnx"))
        if "isnet-gpupost" not in [j[0] for j in jobs] and "isnet-variants" in groups:
            jobs.append(("isnet-gpupost", gpu_post_variant, models_dir / "isnet.onnx", workdir / "isnet-gpupost.onnx"))
    for name, fn, src, dst in jobs:
        t = time.perf_counter()
        try:
            if not src.is_file():
                raise VariantNotApplicable(f"source {src.name} was not made")
            made[name] = fn(src, dst)
        except VariantNotApplicable as e:
            made[name] = {"skipped": str(e)}
        except Exception as e:
            made[name] = {"error": f"{type(e).__name__}: {e}"}
        made[name]["make_s"] = time.perf_counter() - t
    return made


PLACEMENT_RE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s?(.*)$")
NOT_FOUND_RE = re.compile(r"kernel not found in registries for (Op type: .*)$")
COPY_RE = re.compile(r"AddCopyNode\]\s?(.*)$")
ADAPTER_RE = re.compile(r"adapter|vulkan|backend", re.I)


def extract_logs(stderr: str) -> dict[str, Any]:
    """The verbose log's placement lines, the WebGPU EP's 'kernel not found' lines
    (why a node went to CPU), the copy nodes onnxruntime added, adapter mentions."""
    lines = stderr.splitlines()
    placement = [m.group(1) for m in map(PLACEMENT_RE.search, lines) if m]
    not_found = list(dict.fromkeys(m.group(1) for m in map(NOT_FOUND_RE.search, lines) if m))
    copies = list(dict.fromkeys(m.group(1) for m in map(COPY_RE.search, lines) if m))
    adapter = [ln for ln in lines if ADAPTER_RE.search(ln)][:40]
    counts = {}
    for ln in placement:
        m = re.search(r"placed on \[(\w+)\]\. Number of nodes: (\d+)", ln)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return {"placement_log": placement, "placement_counts": counts, "kernel_not_found": not_found,
            "copy_nodes_added": copies, "adapter_log_lines": adapter}


def cpu_placement_check(res: dict[str, Any]) -> dict[str, Any]:
    """The nodes the verbose log places on the CPU EP ("  Op (name)" lines under
    "placed on [CPUExecutionProvider]"), each with its output dtypes/shapes from the
    profiler, and whether all are int64/int32 shape arithmetic (an op of SHAPE_OPS whose
    outputs are small int tensors): the fused pre/post in float leave nothing else there."""
    nodes: list[dict[str, Any]] = []
    on_cpu = False
    for ln in res.get("placement_log", []):
        if "placed on [" in ln:
            on_cpu = f"[{CPU_EP}]" in ln
            continue
        m = re.match(r"^\s+(\w+) \((.*)\)\s*$", ln)
        if on_cpu and m:
            nodes.append({"op": m.group(1), "name": m.group(2)})
        elif not m:
            on_cpu = False
    prof = {c["name"]: c for c in (res.get("profile") or {}).get("cpu_nodes", [])}
    # Nodes without a name (onnxruntime's own, e.g. from the layout transformer) log as
    # "Op ()" and profile as "<Op>_token_<n>" / "<Op>_<n>": matched by op, in order, to the
    # CPU profile entries that no named log line took.
    named = {n["name"] for n in nodes if n["name"]}
    spare: dict[str, list[dict[str, Any]]] = {}
    for c in prof.values():
        if c["name"] not in named:
            spare.setdefault(c["op"], []).append(c)
    for n in nodes:
        p = prof.get(n["name"]) if n["name"] else (spare.get(n["op"]) or [None]).pop(0)
        if p is not None and not n["name"]:
            n["profiled_as"] = p["name"]
        if p is None:
            n["kind"] = "unknown (not in the profile)"
            continue
        n["output_type_shape"] = p["output_type_shape"]
        n["output_size"] = p["output_size"]
        n["kind"] = p["kind"]
    by_op: dict[str, int] = {}
    for n in nodes:
        by_op[n["op"]] = by_op.get(n["op"], 0) + 1
    logged = any("placed on [" in ln for ln in res.get("placement_log", []))
    unmatched = sum(len(v) for v in spare.values())
    return {"cpu_nodes": nodes, "cpu_nodes_by_op": by_op, "count": len(nodes),
            "only_int_shape_nodes": all(n["kind"] == "shape" for n in nodes) if logged else None,
            "not_shape": [f"{n['op']} ({n['name']}): {n['kind']}" for n in nodes if n["kind"] != "shape"],
            "profile_cpu_nodes_not_in_log": unmatched}


def summarise(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (config, input): times in ms, CPU median of the same model/input, agreement."""
    cpu: dict[tuple[str, str], float] = {}
    for c in configs:
        if c["spec"]["ep"] == "cpu" and c["spec"]["variant"] == "shipped":
            for inp, row in c.get("inputs", {}).items():
                if "median_s" in row:
                    cpu[(c["spec"]["ref_model"], inp)] = row["median_s"]
    rows = []
    for c in configs:
        base = {"config": c["name"], "ok": c.get("ok"), "create_ms": 1e3 * c["create_s"] if "create_s" in c else None}
        if c.get("skipped"):
            rows.append({**base, "skipped": c["skipped"]})
            continue
        if not c.get("inputs"):
            rows.append({**base, "error": c.get("error")})
            continue
        for inp, row in c["inputs"].items():
            r = {**base, "input": inp, "model_hw": row.get("model_hw")}
            for k in ("first_s", "median_s", "min_s"):
                if k in row:
                    r[k.replace("_s", "_ms")] = 1e3 * row[k]
            ref = cpu.get((c["spec"]["ref_model"], inp))
            if ref and "median_s" in row and c["spec"]["ep"] == "webgpu":
                r["cpu_median_ms"] = 1e3 * ref
                r["speedup_vs_cpu"] = ref / row["median_s"]
            if "vs_cpu" in row:
                r["vs_cpu"] = row["vs_cpu"]
            if "parts" in row:  # quality: its parts and Balanced in the same process
                r["first_parts_ms"] = {k: 1e3 * v for k, v in row["first_parts_s"].items()}
                r["parts_median_ms"] = {k: 1e3 * v["median_s"] for k, v in row["parts"].items()}
                r["parts_min_ms"] = {k: 1e3 * v["min_s"] for k, v in row["parts"].items()}
                r["balanced_median_ms"] = 1e3 * row["balanced"]["median_s"]
                r["balanced_min_ms"] = 1e3 * row["balanced"]["min_s"]
                for k in ("balanced_vs_cpu", "quality_vs_balanced"):
                    if k in row:
                        r[k] = row[k]
            if "error" in row:
                r["error"] = row["error"]
            rows.append(r)
    return rows


def env_info(webgpu: bool) -> dict[str, Any]:
    import onnxruntime as ort

    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "libvulkan": ctypes.util.find_library("vulkan"),
        "VK_DRIVER_FILES": os.environ.get("VK_DRIVER_FILES"),
    }
    for pkg in ("onnxruntime-ep-webgpu", "onnx", "pillow"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = None
    try:
        q = "name,driver_version,memory.total,clocks.max.sm,vbios_version"
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True,
            timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        info["nvidia_smi"] = f"unavailable: {e}"
    if webgpu:
        register_webgpu()
        info["ep_devices"] = [
            {"ep_name": d.ep_name, "ep_vendor": d.ep_vendor, "ep_metadata": dict(d.ep_metadata),
             "ep_options": dict(d.ep_options), "device_type": str(d.device.type),
             "device_vendor": d.device.vendor, "vendor_id": d.device.vendor_id,
             "device_id": d.device.device_id, "device_metadata": dict(d.device.metadata)}
            for d in ort.get_ep_devices()
        ]
    return info


def probe_webgpu(workdir: Path) -> dict[str, Any]:
    """A 2-node float graph on the WebGPU EP: proves an adapter exists before the real runs."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1024])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1024])
    g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
                          "probe", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    path = workdir / "probe.onnx"
    onnx.save(m, str(path))
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.add_provider_for_devices([register_webgpu()], {})
    sess = ort.InferenceSession(str(path), sess_options=so)
    if WEBGPU_EP not in sess.get_providers():
        return {"ok": False, "providers": sess.get_providers(), "error": "silent CPU fallback"}
    v = np.linspace(-1, 1, 1024, dtype=np.float32)
    (out,) = sess.run(None, {"x": v})
    return {"ok": bool(np.allclose(out, np.maximum(2 * v, 0))), "providers": sess.get_providers(),
            "resize_antialias": probe_antialias(workdir)}


def probe_antialias(workdir: Path) -> dict[str, Any]:
    """Does the WebGPU EP run an antialiased Resize (opset 18, linear, 64 -> 20 px), and
    does it agree with the CPU EP? (The 2026-11-25 fused graphs used one.)"""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    sizes = numpy_helper.from_array(np.array([1, 3, 20, 20], np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear", antialias=1,
                            coordinate_transformation_mode="half_pixel")
    g = helper.make_graph([node], "aa", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 20, 20])], [sizes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    path = workdir / "resize_aa.onnx"
    onnx.save(m, str(path))
    x = np.random.default_rng(0).random((1, 3, 64, 64), np.float32)
    (ref,) = ort.InferenceSession(str(path), providers=[CPU_EP]).run(None, {"x": x})
    out: dict[str, Any] = {}
    try:
        so = ort.SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = str(workdir / "resize_aa")
        so.add_provider_for_devices([register_webgpu()], {})
        sess = ort.InferenceSession(str(path), sess_options=so)
        out["providers"] = sess.get_providers()
        try:
            (y,) = sess.run(None, {"x": x})
            out["max_abs_diff_vs_cpu"] = float(np.abs(y - ref).max())
        finally:
            events = json.loads(Path(sess.end_profiling()).read_text())
            out["resize_node_provider"] = sorted({e["args"].get("provider", "?") for e in events
                                                  if e.get("cat") == "Node" and e["args"].get("op_name") == "Resize"})
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def run_parent(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="webgpu_native_"))
    webgpu = not args.no_webgpu
    results: dict[str, Any] = {
        "script": "bench/webgpu_native.py",
        "argv": sys.argv[1:],
        "method": {
            "timing": "time.perf_counter around InferenceSession.run(None, feeds): host->GPU "
                      "upload of the uint8 photo, all GPU work, download of alpha + cutout",
            "first_s": "first run of a fresh session in a fresh process (includes WGSL shader "
                       "compilation / pipeline creation); first_s of later inputs in the same "
                       "session covers only new shapes",
            "warm": f"{args.warm} runs (WebGPU) / {args.cpu_warm} runs (CPU) after the first",
            "reference": "alpha of the CPU EP, same model file and feeds, product session config",
            "product_session_config": PRODUCT_CONFIG,
            "cpu_threads": "onnxruntime default (intra_op_num_threads = 0: one per physical core)",
        },
        "env": {}, "configs": [],
    }
    out = Path(args.out)

    def save() -> None:
        out.write_text(json.dumps(results, indent=1, default=str))

    try:
        results["env"] = env_info(webgpu)
    except Exception as e:
        results["env"] = {"error": f"{type(e).__name__}: {e}"}
    groups = set(args.groups.split(","))
    if webgpu:
        try:
            results["probe"] = probe_webgpu(workdir)
        except Exception as e:
            results["probe"] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print("probe:", results["probe"], flush=True)
        if not results["probe"]["ok"]:
            save()
            return 3
    modes = [m for m in MODE_ORDER if m in args.modes.split(",")]
    results["models_sha256"] = {
        m: hashlib.sha256((Path(args.models_dir) / f"{MODES[m].model}.onnx").read_bytes()).hexdigest()
        for m in modes}
    results["feed"] = args.feed
    results["variants"] = make_variants(Path(args.models_dir), workdir, groups, modes)
    save()
    logs: dict[str, bytes] = {}
    for spec in plan(Path(args.models_dir), workdir, groups, modes, args.warm, args.cpu_warm, webgpu,
                     args.feed):
        if spec["variant"] != "shipped" and not Path(spec["model_path"]).is_file():
            made = results["variants"].get(f"{spec['model']}-{spec['variant']}", {})
            why = made.get("skipped") or made.get("error") or "variant file not made"
            results["configs"].append({"name": spec["name"], "ok": None, "skipped": f"variant {spec['variant']}: {why}",
                                       "spec": spec})
            print(f"[  skip] {spec['name']}: {why}", flush=True)
            continue
        spec_file = workdir / "spec.json"
        spec_file.write_text(json.dumps(spec))
        t = time.perf_counter()
        try:
            env = dict(os.environ)
            cache = workdir / "glcache" / re.sub(r"[^A-Za-z0-9]+", "_", spec["shader_cache"])
            cache.mkdir(parents=True, exist_ok=True)
            env.update({"__GL_SHADER_DISK_CACHE": "1", "__GL_SHADER_DISK_CACHE_PATH": str(cache),
                        "__GL_SHADER_DISK_CACHE_SKIP_CLEANUP": "1"})
            p = subprocess.run([sys.executable, __file__, "--child", str(spec_file), "--workdir", str(workdir)],
                               capture_output=True, text=True, timeout=args.child_timeout, env=env)
            rc, stdout, stderr = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, stdout = -999, ""
            stderr = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        wall = time.perf_counter() - t
        res: dict[str, Any]
        res_file = workdir / "child.json"
        if rc == 0 and res_file.is_file():
            res = json.loads(res_file.read_text())
        else:
            res = {"name": spec["name"], "ok": False, "error": f"child exited {rc}"}
        res_file.unlink(missing_ok=True)
        res["spec"] = spec
        res["rc"] = rc
        res["wall_s"] = wall
        res["shader_cache_files_after"] = sum(1 for f in cache.rglob("*") if f.is_file()) if webgpu else None
        if spec.get("verbose"):
            res.update(extract_logs(stderr))
            res["cpu_placement_check"] = cpu_placement_check(res)
            logs[re.sub(r"[^A-Za-z0-9]+", "_", spec["name"]) + ".stderr.txt.gz"] = gzip.compress(stderr.encode())
        else:
            res["stderr_tail"] = stderr[-3000:]
        results["configs"].append(res)
        save()
        brief = {k: res.get(k) for k in ("ok", "create_s", "error", "rc")}
        for inp, row in res.get("inputs", {}).items():
            brief[inp] = {k: row.get(k) for k in ("first_s", "median_s", "min_s", "error")}
            if "vs_cpu" in row:
                brief[inp]["vs_cpu"] = {k: row["vs_cpu"][k] for k in ("max_abs_diff", "mean_abs_diff", "iou_gt127")}
            if "parts" in row:
                brief[inp]["parts_median_s"] = {k: v["median_s"] for k, v in row["parts"].items()}
                brief[inp]["balanced_median_s"] = row["balanced"]["median_s"]
        if "profile" in res:
            brief["profile"] = {k: res["profile"].get(k) for k in ("nodes_by_provider", "cpu_compute_nodes")}
        if "placement_counts" in res:
            brief["placement_counts"] = res["placement_counts"]
            chk = res["cpu_placement_check"]
            brief["cpu_check"] = {k: chk[k] for k in ("cpu_nodes_by_op", "only_int_shape_nodes", "not_shape")}
        print(f"[{wall:6.1f}s] {spec['name']}: {json.dumps(brief, default=str)}", flush=True)
    results["summary"] = summarise(results["configs"])
    if args.logs_tar and logs:
        with tarfile.open(args.logs_tar, "w:gz") as tar:
            for name, data in logs.items():
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
    save()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", default=str(ROOT / "build" / "models"))
    ap.add_argument("--out", default="webgpu_native.json", help="results JSON (rewritten after each config)")
    ap.add_argument("--groups", default="main,isnet-variants", help="comma list: main, isnet-variants, isnet-fp16, quality")
    ap.add_argument("--modes", default=",".join(MODE_ORDER), help="comma list of modes to measure")
    ap.add_argument("--feed", choices=("photo", "model"), default="photo",
                    help="photo: the photo at its size; model: pre-shrunk by the resize graph (see feeds_for)")
    ap.add_argument("--warm", type=int, default=15, help="warm runs per input on WebGPU")
    ap.add_argument("--cpu-warm", type=int, default=9, help="warm runs per input on the CPU EP")
    ap.add_argument("--child-timeout", type=float, default=300.0)
    ap.add_argument("--logs-tar", default=None, help="tar.gz of the verbose logs of placement runs")
    ap.add_argument("--no-webgpu", action="store_true", help="CPU configs only (plumbing check)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        workdir = Path(args.workdir)
        res = run_child(json.loads(Path(args.child).read_text()), workdir)
        (workdir / "child.json").write_text(json.dumps(res, default=str))
        return 0
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
