"""Weight-only quantisation of Conv weights, expanded at run time by `DequantizeLinear`.

Why weight-only DQ: onnxruntime's dynamic quantisation (ConvInteger /
DynamicQuantizeLinear) is not on onnxruntime-web's WebGPU op list, while
`DequantizeLinear -> Conv` is an ordinary fp32 Conv whose weight is computed from
int8/int4 storage, so it runs on every execution provider. With the session
config entry `session.disable_quant_qdq = "1"` onnxruntime folds the DQ nodes at
load and the model then runs at fp32 speed.

Schemes (per Conv weight, chosen by a plan: {conv node name: scheme}):
  "int8"      int8 symmetric, one fp32 scale per output channel (opset 13).
  "int4-bN"   int4 symmetric, blocks of N input channels at each kernel tap,
              fp16 scales (opset 21 blocked DQ), then Cast to fp32.
  "keep"      leave the float weight as it is.
int4 scales are searched per block to minimise the activation-weighted squared
error (importance = E[x^2] per input channel, from calibration images), and each
quantised layer's bias absorbs the expected error E[x] . dW (bias correction).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Stats = dict[str, tuple[np.ndarray, np.ndarray]]  # conv name -> (E[x], E[x^2]) per input channel
OPSET_INT4 = 21  # blocked DequantizeLinear and int4 tensors


@dataclass(frozen=True)
class ConvWeight:
    node: str  # Conv node name
    weight: str  # initializer name
    bias: str | None
    shape: tuple[int, ...]
    kind: str = "conv"  # "conv": [O, I, kh, kw]; "matmul": B of MatMul, [K, N] (channel axis 1)


def conv_weights(model: onnx.ModelProto, matmul: bool = False) -> list[ConvWeight]:
    """Conv weights (and, with `matmul`, constant 2-D MatMul B operands) stored as initializers."""
    inits = {t.name: t for t in model.graph.initializer}
    out: list[ConvWeight] = []
    for n in model.graph.node:
        if n.op_type == "Conv" and n.input[1] in inits:
            bias = n.input[2] if len(n.input) > 2 and n.input[2] in inits else None
            out.append(ConvWeight(n.name, n.input[1], bias, tuple(inits[n.input[1]].dims)))
        elif matmul and n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2:
            out.append(ConvWeight(n.name, n.input[1], None, tuple(inits[n.input[1]].dims), "matmul"))
    return out


# ------------------------------------------------------------------ tensor maths


def quant_int8_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 symmetric per output channel: (q int8, scale fp32[O])."""
    absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scale


def quant_int4_blocked(
    w: np.ndarray,
    block: int,
    importance: np.ndarray | None = None,
    ratios: Iterable[float] = np.linspace(0.55, 1.0, 10),
) -> tuple[np.ndarray, np.ndarray]:
    """int4 symmetric, blocks of `block` along axis 1: (q int8 in [-8, 7], scale fp16[O, I/block, ...]).

    The clipping ratio of each block is searched to minimise the importance-weighted
    squared error; scales are rounded to fp16 before rounding q, as they are stored.
    """
    o, i = w.shape[:2]
    rest = w.shape[2:]
    if i % block:
        raise ValueError(f"{i} input channels not divisible by block {block}")
    wb = w.reshape(o, i // block, block, *rest).astype(np.float32)
    imp = np.ones(i, np.float32) if importance is None else np.maximum(importance, 1e-12).astype(np.float32)
    impb = imp.reshape(1, i // block, block, *[1] * len(rest))
    absmax = np.abs(wb).max(axis=2, keepdims=True)
    best_err = np.full(absmax.shape, np.inf, np.float32)
    best_scale = np.zeros(absmax.shape, np.float32)
    for r in ratios:
        s = (absmax * r / 7.0).astype(np.float16).astype(np.float32)
        s = np.where(s > 0, s, 1.0)
        dq = np.clip(np.rint(wb / s), -8, 7) * s
        err = (impb * (wb - dq) ** 2).sum(axis=2, keepdims=True)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_scale = np.where(better, s, best_scale)
    q = np.clip(np.rint(wb / best_scale), -8, 7).astype(np.int8).reshape(w.shape)
    return q, best_scale.squeeze(2).astype(np.float16)


def dequant(q: np.ndarray, scale: np.ndarray, axis: int = 0, block: int | None = None) -> np.ndarray:
    s = scale.astype(np.float32)
    if block is None:
        return q.astype(np.float32) * s.reshape([-1 if d == axis else 1 for d in range(q.ndim)])
    return q.astype(np.float32) * np.repeat(s, block, axis=axis)


def _pack_int4(q: np.ndarray) -> bytes:
    """ONNX int4 layout: two values per byte, the first in the low nibble."""
    flat = (q.reshape(-1).astype(np.int16) & 0xF).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return (flat[0::2] | (flat[1::2] << 4)).tobytes()


# ------------------------------------------------------------------ graph building


def quantize_model(
    model: onnx.ModelProto,
    plan: dict[str, str],
    stats: Stats | None = None,
    bias_correction: bool = True,
    hessians: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """Return a copy of `model` (fp32 weights) with each planned Conv weight stored quantised.

    `stats` (from `activation_stats`) weight the int4 scale search and drive bias
    correction; `hessians` (from `conv_hessians`) switch int4 layers to GPTQ."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    need = OPSET_INT4 if any(v.startswith("int4") for v in plan.values()) else 13  # per-axis DQ: 13
    if _opset(model) < need:  # e.g. MODNet is opset 11: Unsqueeze etc. change form on the way up
        from onnx import version_converter

        model = version_converter.convert_version(model, need)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    new_inits: list[onnx.TensorProto] = []
    new_nodes: list[onnx.NodeProto] = []
    drop: set[str] = set()
    uses_int4 = False
    for cw in conv_weights(model, matmul=True):
        scheme = plan.get(cw.node, "keep")
        if scheme == "keep":
            continue
        w = numpy_helper.to_array(inits[cw.weight]).astype(np.float32)
        mean_x, msq_x = stats[cw.node] if stats and cw.node in stats else (None, None)
        qname = f"{cw.weight}_quantized"
        if cw.kind == "matmul":
            if scheme != "int8":
                raise ValueError(f"{cw.node}: MatMul weights support int8 only")
            q, scale = quant_int8_per_channel(w.T)
            q, wq = np.ascontiguousarray(q.T), dequant(q, scale, axis=0).T
            new_inits += [numpy_helper.from_array(q, qname), numpy_helper.from_array(scale, f"{qname}_scale")]
            new_nodes.append(
                helper.make_node("DequantizeLinear", [qname, f"{qname}_scale"], [cw.weight], f"{cw.weight}_DQ", axis=1)
            )
            drop.add(cw.weight)
            continue
        if scheme == "int8":
            q, scale = quant_int8_per_channel(w)
            wq = dequant(q, scale, axis=0)
            new_inits += [numpy_helper.from_array(q, qname), numpy_helper.from_array(scale, f"{qname}_scale")]
            new_nodes.append(
                helper.make_node("DequantizeLinear", [qname, f"{qname}_scale"], [cw.weight], f"{cw.weight}_DQ", axis=0)
            )
        elif scheme.startswith("int4-b"):
            block = int(scheme[len("int4-b") :])
            if hessians is not None and cw.node in hessians:
                q, scale = gptq_int4(w, hessians[cw.node], block)
            else:
                q, scale = quant_int4_blocked(w, block, msq_x)
            wq = dequant(q, scale, axis=1, block=block)
            new_inits += [
                helper.make_tensor(qname, TensorProto.INT4, q.shape, _pack_int4(q), raw=True),
                numpy_helper.from_array(scale, f"{qname}_scale"),
            ]
            fp16 = f"{qname}_fp16"
            new_nodes += [
                helper.make_node(
                    "DequantizeLinear", [qname, f"{qname}_scale"], [fp16], f"{cw.weight}_DQ", axis=1, block_size=block
                ),
                helper.make_node("Cast", [fp16], [cw.weight], f"{cw.weight}_Cast", to=TensorProto.FLOAT),
            ]
            uses_int4 = True
        else:
            raise ValueError(f"unknown scheme {scheme!r} for {cw.node}")
        drop.add(cw.weight)
        if bias_correction and mean_x is not None:
            # E[conv(x, W) - conv(x, Wq)] ~= sum_i,k dW[o,i,k] E[x_i] (ignoring zero padding).
            shift = ((w - wq).sum(axis=tuple(range(2, w.ndim))) * mean_x[None, :]).sum(axis=1)
            if cw.bias is None:
                bname = f"{cw.weight}_bias"
                convs[cw.node].input.append(bname)
                new_inits.append(numpy_helper.from_array(shift.astype(np.float32), bname))
            else:
                b = numpy_helper.to_array(inits[cw.bias]).astype(np.float32) + shift.astype(np.float32)
                inits[cw.bias].CopyFrom(numpy_helper.from_array(b, cw.bias))
    kept = [t for t in graph.initializer if t.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    if uses_int4:
        _set_opset(model, OPSET_INT4)
    else:
        _set_opset(model, max(13, _opset(model)))
    onnx.checker.check_model(model)
    return model


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _set_opset(model: onnx.ModelProto, version: int) -> None:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = max(o.version, version)
    if version >= 21:
        model.ir_version = max(model.ir_version, 10)  # int4 tensors need IR 10


# ------------------------------------------------------------------ calibration


def _session(model: onnx.ModelProto | str | Path, threads: int = 2, keep_qdq: bool = False):
    """A CPU session; weight-only DQ is folded at load (fp32 speed) unless `keep_qdq`, which
    a static QDQ graph needs to run as integer kernels."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.disable_quant_qdq", "0" if keep_qdq else "1")
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def activation_stats(model: onnx.ModelProto, inputs: list[np.ndarray], threads: int = 2) -> Stats:
    """Per-input-channel E[x] and E[x^2] of every Conv input, averaged over `inputs`."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    convs = [(n.name, n.input[0]) for n in m.graph.node if n.op_type == "Conv"]
    have = {o.name for o in m.graph.output}
    for _, x in convs:
        if x not in have and x not in {i.name for i in m.graph.input}:
            m.graph.output.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, None))
            have.add(x)
    sess = _session(m, threads)
    feed_name = m.graph.input[0].name
    names = sorted({x for _, x in convs} - {feed_name})
    acc: dict[str, list[np.ndarray]] = {x: [0.0, 0.0] for x in names + [feed_name]}  # type: ignore[misc]
    for inp in inputs:
        outs = sess.run(names, {feed_name: inp})
        for x, v in zip(names + [feed_name], outs + [inp]):
            acc[x][0] = acc[x][0] + v.mean(axis=(0, 2, 3))
            acc[x][1] = acc[x][1] + (v.astype(np.float64) ** 2).mean(axis=(0, 2, 3))
    n = len(inputs)
    return {c: (acc[x][0] / n, acc[x][1] / n) for c, x in convs}


def layer_sensitivity(
    model: onnx.ModelProto,
    inputs: list[np.ndarray],
    scheme: str,
    stats: Stats | None = None,
    layers: list[str] | None = None,
    threads: int = 2,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, float]:
    """Mean squared change of the output alpha when only one Conv is quantised with `scheme`.

    One session with every Conv weight exposed as an overridable input, so each
    probe is just a feed, not a new session.
    """
    m = onnx.ModelProto.FromString(model.SerializeToString())
    cws = {c.node: c for c in conv_weights(m)}
    inits = {t.name: t for t in m.graph.initializer}
    for c in cws.values():
        t = inits[c.weight]
        m.graph.input.append(helper.make_tensor_value_info(c.weight, t.data_type, list(t.dims)))
    sess = _session(m, threads)
    feed_name = m.graph.input[0].name
    refs = [sess.run(None, {feed_name: x})[0] for x in inputs]
    out: dict[str, float] = {}
    for name in layers or list(cws):
        c = cws[name]
        w = numpy_helper.to_array(inits[c.weight]).astype(np.float32)
        msq = stats[name][1] if stats and name in stats else None
        if scheme == "int8":
            q, s = quant_int8_per_channel(w)
            wq = dequant(q, s, axis=0)
        else:
            block = min(int(scheme[len("int4-b") :]), w.shape[1])
            q, s = quant_int4_blocked(w, block, msq)
            wq = dequant(q, s, axis=1, block=block)
        feeds_w = {c.weight: wq}  # probes skip bias correction: they only rank layers
        err = 0.0
        for x, ref in zip(inputs, refs):
            y = sess.run(None, {feed_name: x, **feeds_w})[0]
            err += float(np.mean((y - ref) ** 2))
        out[name] = err / len(inputs)
        if progress:
            progress(name, out[name])
    return out


# ------------------------------------------------------------------ plans


def weight_bytes(shape: tuple[int, ...], scheme: str) -> float:
    """Stored bytes of one weight under `scheme` (payload + scales)."""
    n = int(np.prod(shape))
    if scheme == "keep":
        return 4.0 * n
    if scheme == "int8":
        return n + 4.0 * shape[0]
    block = int(scheme[len("int4-b") :])
    return n / 2 + 2.0 * n / block


def uniform_plan(
    model: onnx.ModelProto, scheme: str, small: str = "int8", matmul: bool = False, min_size: int = 0
) -> dict[str, str]:
    """Every Conv (and MatMul weight, with `matmul`) at `scheme`; layers whose input channels
    don't fit the block use `small`; weights under `min_size` elements are kept float."""
    plan: dict[str, str] = {}
    for c in conv_weights(model, matmul=matmul):
        if int(np.prod(c.shape)) < min_size:
            plan[c.node] = "keep"
        elif c.kind == "matmul":
            plan[c.node] = "int8"
        elif scheme.startswith("int4-b") and c.shape[1] % int(scheme[len("int4-b") :]):
            plan[c.node] = small
        else:
            plan[c.node] = scheme
    return plan


def mixed_plan(
    model: onnx.ModelProto,
    sensitivity: dict[str, float],
    budget_bytes: float,
    low: str = "int4-b32",
    high: str = "int8",
    overhead_bytes: float = 150_000,
) -> dict[str, str]:
    """Start at `low` everywhere; promote the layers with the most sensitivity per extra byte
    to `high` while the weights (plus a graph/bias overhead allowance) fit `budget_bytes`."""
    cws = conv_weights(model)
    plan = uniform_plan(model, low, small=high)
    total = sum(weight_bytes(c.shape, plan[c.node]) for c in cws) + overhead_bytes
    ranked = sorted(
        (c for c in cws if plan[c.node] == low),
        key=lambda c: -sensitivity.get(c.node, 0.0) / (weight_bytes(c.shape, high) - weight_bytes(c.shape, low)),
    )
    for c in ranked:
        extra = weight_bytes(c.shape, high) - weight_bytes(c.shape, low)
        if total + extra <= budget_bytes:
            plan[c.node] = high
            total += extra
    return plan


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# ------------------------------------------------------------------ calibration photos

# scikit-image 0.26.0 sample photos (public domain / CC0, see skimage/data/_fetchers.py):
# never part of the davis345 evaluation set, so calibrating on them cannot leak into the scores.
CALIBRATION_PHOTOS: dict[str, str] = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
}


def calibration_photos(cache: Path | None = None) -> list[Path]:
    """The pinned scikit-image sample photos, extracted and sha256-verified."""
    from cutout.toolchain.fetch import DEFAULT_CACHE, fetch_pypi_member

    cache = Path(cache or DEFAULT_CACHE)
    return [
        fetch_pypi_member(
            "scikit-image", "0.26.0", f"skimage/data/{name}", digest, cache / "sources" / "skimage" / name, cache
        )
        for name, digest in CALIBRATION_PHOTOS.items()
    ]


# ------------------------------------------------------------------ GPTQ (error-compensating int4)


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def im2col(x: np.ndarray, kernel: tuple[int, int], strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1)) -> np.ndarray:
    """[1, I, H, W] -> [positions, kh*kw*I], columns ordered (tap, channel) to match
    `_tap_major` (so a run of `block` columns is one DQ block: `block` channels at one tap)."""
    _, c, h, w = x.shape
    kh, kw = kernel
    xp = np.pad(x[0], ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    cols = []
    for a in range(kh):
        for b in range(kw):
            ya, xb = a * dilations[0], b * dilations[1]
            patch = xp[:, ya : ya + strides[0] * oh : strides[0], xb : xb + strides[1] * ow : strides[1]]
            cols.append(patch.reshape(c, -1).T)
    return np.concatenate(cols, axis=1)


def _tap_major(w: np.ndarray) -> np.ndarray:
    """[O, I, kh, kw] -> [O, kh*kw*I] with column = tap * I + channel."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def _from_tap_major(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    o, i, kh, kw = shape
    return m.reshape(o, kh, kw, i).transpose(0, 3, 1, 2)


def conv_hessians(
    model: onnx.ModelProto, inputs: list[np.ndarray], max_positions: int = 40_000, threads: int = 2, seed: int = 0
) -> dict[str, np.ndarray]:
    """H = E[x x^T] over im2col patches of every Conv's input (columns tap-major)."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    feed = m.graph.input[0].name
    names = sorted({n.input[0] for n in convs} - {feed})
    for x in names:
        m.graph.output.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, None))
    sess = _session(m, threads)
    rng = np.random.default_rng(seed)
    acc: dict[str, np.ndarray] = {}
    for inp in inputs:
        acts = dict(zip(names, sess.run(names, {feed: inp})))
        acts[feed] = inp
        for n in convs:
            a = _attrs(n)
            w_shape = next(t.dims for t in m.graph.initializer if t.name == n.input[1])
            cols = im2col(
                acts[n.input[0]].astype(np.float32),
                tuple(w_shape[2:]),
                tuple(a.get("strides", (1, 1))),
                tuple(a.get("pads", (0, 0, 0, 0))),
                tuple(a.get("dilations", (1, 1))),
            )
            if len(cols) > max_positions:
                cols = cols[rng.choice(len(cols), max_positions, replace=False)]
            h = (cols.T.astype(np.float64) @ cols) / len(cols) / len(inputs)
            acc[n.name] = acc[n.name] + h if n.name in acc else h
        del acts
    return acc


def gptq_int4(
    w: np.ndarray, hessian: np.ndarray, block: int, damp: float = 0.01, ratios=np.linspace(0.7, 1.0, 7)
) -> tuple[np.ndarray, np.ndarray]:
    """GPTQ (Frantar et al. 2022) for one Conv weight, int4 symmetric, blocks of `block`
    input channels at each tap (the DQ layout of `quant_int4_blocked`).

    Columns are quantised one by one in tap-major order; each column's rounding error
    is pushed onto the not-yet-quantised columns through the inverse Hessian, so the
    layer's output (not its weights) stays close. A block's scale is chosen when its
    first column is reached, from the already-updated weights.
    """
    o, i = w.shape[:2]
    W = _tap_major(w.astype(np.float64))
    cols = W.shape[1]
    H = hessian.copy()
    dead = np.diag(H) <= 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H[np.diag_indices(cols)] += damp * np.mean(np.diag(H))
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T  # upper Cholesky factor of H^-1
    Q = np.zeros_like(W)
    scales = np.zeros((o, cols // block), np.float64)
    step = max(block, 128 - 128 % block)
    for i1 in range(0, cols, step):
        i2 = min(i1 + step, cols)
        W1 = W[:, i1:i2].copy()
        E1 = np.zeros_like(W1)
        Hi = Hinv[i1:i2, i1:i2]
        for j in range(i2 - i1):
            col = i1 + j
            if col % block == 0:
                grp = W1[:, j : j + block]
                absmax = np.abs(grp).max(axis=1, keepdims=True)
                best, best_err = None, None
                for r in ratios:
                    s = (absmax * r / 7.0).astype(np.float16).astype(np.float64)
                    s = np.where(s > 0, s, 1.0)
                    err = ((grp - np.clip(np.rint(grp / s), -8, 7) * s) ** 2).sum(axis=1, keepdims=True)
                    if best is None:
                        best, best_err = s, err
                    else:
                        better = err < best_err
                        best, best_err = np.where(better, s, best), np.where(better, err, best_err)
                scale = best
                scales[:, col // block] = scale[:, 0]
            q = np.clip(np.rint(W1[:, j : j + 1] / scale), -8, 7) * scale
            Q[:, col : col + 1] = q
            e = (W1[:, j : j + 1] - q) / Hi[j, j]
            W1[:, j:] -= e @ Hi[j : j + 1, j:]
            E1[:, j : j + 1] = e
        W[:, i2:] -= E1 @ Hinv[i1:i2, i2:]
    qint = np.rint(Q / np.repeat(scales, block, axis=1)).astype(np.int8)
    q4 = _from_tap_major(qint, w.shape)
    # scales: tap-major [O, taps * I/block] -> DQ layout [O, I/block, kh, kw]
    kh, kw = w.shape[2:]
    s4 = scales.reshape(o, kh, kw, i // block).transpose(0, 3, 1, 2)
    return q4, s4.astype(np.float16)


# ------------------------------------------------------------------ static int8 (int8 compute on WASM)


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over a list of inputs (no subclassing:
    importing onnxruntime.quantization at module import would slow every toolchain task)."""

    def __init__(self, name: str, inputs: list[np.ndarray]) -> None:
        self.name, self.inputs, self._it = name, inputs, iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.name: x}

    def __len__(self) -> int:
        return len(self.inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self.inputs[start_index:end_index])

    def rewind(self) -> None:
        self._it = iter(self.inputs)


def static_int8(
    model: onnx.ModelProto,
    inputs: list[np.ndarray] | None,
    ranges: Path,
    keep_float: list[str],
    only: list[str] | None = None,
    method: str = "percentile",
    percentile: float = 99.999,
) -> onnx.ModelProto:
    """Static QDQ int8: uint8 activations (per tensor, Percentile-calibrated), int8
    weights per output channel, so the CPU EP fuses DQ -> Conv -> Q into QLinearConv and
    computes in integers. Only unsigned activations reach MLAS's WASM-SIMD QGEMM (signed
    ones fall back to scalar code: 2x slower than fp32), hence QUInt8.

    `ranges` is the calibration lock file: when it exists its ranges are used and no
    inference runs, so the built file is byte-identical on every machine (calibration
    runs fp32 kernels whose last bits differ between CPUs). Without it the ranges are
    calibrated on `inputs` and written there. `keep_float` are node names left in float;
    `only`, if given, the only nodes quantised. `method`: "percentile" or "minmax"
    ranges; `percentile`: where "percentile" ranges clip |x| (per tensor, over all the
    calibration inputs). The session that runs the result must keep QDQ
    (`session.disable_quant_qdq` = 0).
    """
    import tempfile

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    feed = model.graph.input[0].name
    if not Path(ranges).is_file() and not inputs:
        raise ValueError(f"{ranges} is missing and no calibration inputs were given")
    with tempfile.TemporaryDirectory(prefix="cutout-qdq-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(model, str(src))
        quantize_static(
            str(src), str(dst), _Feeds(feed, inputs or []), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method={"percentile": CalibrationMethod.Percentile,
                              "minmax": CalibrationMethod.MinMax}[method],
            nodes_to_exclude=list(keep_float), nodes_to_quantize=list(only or []),
            calibration_cache_path=str(ranges),
            extra_options={"CalibStridedMinMax": 1,  # one image at a time: bounded memory
                           "CalibPercentile": percentile})
        out = onnx.load(str(dst))
    _shape_from_float(out)
    onnx.checker.check_model(out)
    return out


def _shape_from_float(model: onnx.ModelProto) -> None:
    """Point every Shape at the float tensor instead of its QuantizeLinear -> DequantizeLinear
    copy: the quantiser inserts these pairs in front of Shape, where they cost a full
    quantise of the tensor and block onnxruntime's transpose optimiser."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    for n in graph.node:
        dq = producer.get(n.input[0]) if n.op_type == "Shape" else None
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is not None and q.op_type == "QuantizeLinear":
            n.input[0] = q.input[0]
    while True:  # drop what no longer feeds anything
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    names = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)
