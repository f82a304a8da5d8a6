"""Native reference pipeline: the same fused models as the browser, run by
onnxruntime on the CPU with numpy + Pillow around them.

It is the yardstick for the extension: same model file, same work-size rule
(`cutout.modes`), so a mask or a timing from the browser can be compared with
this one directly.
"""

from __future__ import annotations

import functools
import io
import threading
import time
from os import PathLike
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

from cutout import strips
from cutout.modes import MAX_PIXELS, MAX_WORK_SIDE, model_input_size, work_size

# The browser decodes up to MAX_PIXELS; the reference must too (Pillow warns at 89 MP).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

__all__ = [
    "MAX_WORK_SIDE",
    "get_session",
    "compose",
    "load_rgba",
    "predict_alpha",
    "predict_cutout",
    "predict_mask",
    "reference_u2netp",
    "remove_background",
    "time_native",
    "work_size",
]

ImageSource = Union[str, PathLike, bytes, BinaryIO, np.ndarray]

_SESSIONS: dict[str, ort.InferenceSession] = {}
_LOCK = threading.Lock()


def get_session(model_path: str | PathLike) -> ort.InferenceSession:
    """One InferenceSession per model file: creating one costs far more than a run."""
    key = str(Path(model_path).resolve())
    with _LOCK:
        sess = _SESSIONS.get(key)
        if sess is None:
            options = ort.SessionOptions()
            # Same as the browser engine: fold weight-only DequantizeLinear at load,
            # keep QDQ in static int8 files (integer kernels).
            if not _has_quantize_linear(key):
                options.add_session_config_entry("session.disable_quant_qdq", "1")
            sess = ort.InferenceSession(key, options, providers=["CPUExecutionProvider"])
            _SESSIONS[key] = sess
        return sess


def _has_quantize_linear(path: str) -> bool:
    """A static QDQ graph (activations quantised), rather than weight-only DQ."""
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load(path, load_external_data=False).graph.node)


def _session(session_or_path: ort.InferenceSession | str | PathLike) -> ort.InferenceSession:
    if isinstance(session_or_path, ort.InferenceSession):
        return session_or_path
    return get_session(session_or_path)


def load_rgba(src: ImageSource) -> np.ndarray:
    """Decode to an H x W x 4 uint8 array, upright (EXIF orientation applied)."""
    if isinstance(src, np.ndarray):
        if src.ndim != 3 or src.shape[2] != 4 or src.dtype != np.uint8:
            raise ValueError(f"expected HxWx4 uint8, got {src.shape} {src.dtype}")
        return src
    fp = io.BytesIO(src) if isinstance(src, (bytes, bytearray, memoryview)) else src
    with Image.open(fp) as im:
        # Phone photos are often stored sideways with an EXIF rotation tag; the
        # mask must match the image the user sees.
        upright = ImageOps.exif_transpose(im)
        return np.asarray(upright.convert("RGBA")).copy()


def predict_mask(
    session_or_path: ort.InferenceSession | str | PathLike,
    rgba: np.ndarray,
    max_side: int = MAX_WORK_SIDE,
    model_side: int | None = None,
    keep_aspect: bool = False,
    mirror: bool = False,
) -> np.ndarray:
    """The model's alpha at its own input size (h x w uint8) for an H x W x 4 image.

    Dynamic models (with a `size` input) run at `model_input_size(.., model_side)`,
    the same rule as the browser engine; `model_side` defaults to the model's own
    size (use `modes.pipeline_options(mode)` to match a mode exactly). `mirror` adds
    a pass on the mirrored feed, averaged in by the same graphs as the extension's.
    """
    sess = _session(session_or_path)
    h, w = rgba.shape[:2]
    ww, wh = work_size(w, h, max_side)
    if (ww, wh) != (w, h):
        # Resize RGB only: Pillow premultiplies RGBA when resizing, which would
        # darken transparent regions; the model ignores the A channel anyway.
        rgb = Image.fromarray(np.ascontiguousarray(rgba[..., :3])).resize(
            (ww, wh), Image.Resampling.BILINEAR
        )
        work = np.empty((wh, ww, 4), np.uint8)
        work[..., :3] = np.asarray(rgb)
        work[..., 3] = 255
    else:
        work = np.ascontiguousarray(rgba)
    dynamic = any(i.name == "size" for i in sess.get_inputs())
    if dynamic:
        fh, fw = model_input_size(ww, wh, model_side or _native_side(sess), keep_aspect)
    else:
        fh, fw = _native_hw(sess)
    # The model graph cannot antialias (WebGPU), so the same resize graph as in
    # the browser shrinks the photo to the model's input first (toolchain.fuse).
    (feed,) = _resize_session().run(None, {"rgba": work[None],
                                           "size": np.array((fh, fw), np.int32)})
    feeds = {"rgba": feed}
    if dynamic:
        feeds["size"] = np.array((fh, fw), np.int32)
    if not mirror:
        (alpha,) = sess.run(["alpha"], feeds)
    else:
        alpha, cutout = sess.run(["alpha", "cutout"], feeds)
        from cutout.toolchain.passes import FLIP_FILE, MIRROR_FILE

        (feeds["rgba"],) = _pass_session(FLIP_FILE).run(None, {"x": feed})
        (mirrored,) = sess.run(["alpha"], feeds)
        alpha, _ = _pass_session(MIRROR_FILE).run(None, {"cutout": cutout, "mirrored": mirrored})
    if alpha.shape[1:] != (fh, fw):
        raise RuntimeError(f"model returned alpha {alpha.shape[1:]}, expected {(fh, fw)}")
    return alpha[0]


def compose(rgba: np.ndarray, mask: np.ndarray,
            strip_pixels: int = strips.STRIP_PIXELS) -> np.ndarray:
    """The exported cut-out (H x W x 4 straight RGBA) from the photo and a model mask,
    as the extension makes it: the compose graphs, in the same strips of rows."""
    h, w = rgba.shape[:2]
    low_h, low_w = strips.low_size(h, w, *mask.shape)
    downscale, fields_graph, strip_graph = _compose_sessions()
    parts = [downscale.run(None, {
        "rgba": np.ascontiguousarray(rgba[None, s.src_first:s.src_stop]),
        "rows": np.array(strips.downscale_rows(s, h, low_h, low_w), np.int32)})[0]
        for s in strips.downscale_strips(h, w, low_h, strip_pixels)]
    (fields,) = fields_graph.run(None, {"rgb_low": np.concatenate(parts, axis=1),
                                        "alpha": np.ascontiguousarray(mask)[None]})
    out = np.empty_like(rgba)
    for s in strips.compose_strips(h, w, low_h, strip_pixels):
        out[s.first:s.stop] = strip_graph.run(None, {
            "rgba": np.ascontiguousarray(rgba[None, s.first:s.stop]),
            "fields": np.ascontiguousarray(fields[:, s.src_first:s.src_stop]),
            "rows": np.array(strips.compose_rows(s, h, low_h), np.int32)})[0][0]
    return out


def predict_cutout(session_or_path: ort.InferenceSession | str | PathLike, rgba: np.ndarray,
                   **options: object) -> np.ndarray:
    """The full-size cut-out (straight RGBA) the extension exports for `rgba`."""
    return compose(rgba, predict_mask(session_or_path, rgba, **options))  # type: ignore[arg-type]


def predict_alpha(session_or_path: ort.InferenceSession | str | PathLike, rgba: np.ndarray,
                  max_side: int = MAX_WORK_SIDE, model_side: int | None = None,
                  keep_aspect: bool = False, mirror: bool = False) -> np.ndarray:
    """The exported cut-out's alpha (H x W uint8); see predict_mask for the options."""
    return predict_cutout(session_or_path, rgba, max_side=max_side, model_side=model_side,
                          keep_aspect=keep_aspect, mirror=mirror)[..., 3]


@functools.cache
def _pass_session(name: str) -> ort.InferenceSession:
    from cutout.toolchain.passes import graph_bytes

    return ort.InferenceSession(graph_bytes()[name], providers=["CPUExecutionProvider"])


@functools.cache
def _compose_sessions() -> tuple[ort.InferenceSession, ...]:
    from cutout.toolchain.compose import STRIP_FILES, strip_graphs

    graphs = strip_graphs()
    return tuple(ort.InferenceSession(graphs[STRIP_FILES[step]], providers=["CPUExecutionProvider"])
                 for step in ("downscale", "fields", "strip"))


@functools.cache
def _resize_session() -> ort.InferenceSession:
    from cutout.toolchain.fuse import resize_model

    return ort.InferenceSession(resize_model().SerializeToString(),
                                providers=["CPUExecutionProvider"])


def _native_hw(sess: ort.InferenceSession, default: int = 320) -> tuple[int, int]:
    """The model's own input (height, width), from the fusion spec the toolchain stored."""
    import json

    spec = json.loads(sess.get_modelmeta().custom_metadata_map.get("cutout.fusion", "{}"))
    size = spec.get("native_size", [default, default])
    return int(size[0]), int(size[1])


def _native_side(sess: ort.InferenceSession) -> int:
    """The long side of the model's own input (any-size models)."""
    return max(_native_hw(sess, default=1024))


def remove_background(
    src: ImageSource, model_path: str | PathLike, max_side: int = MAX_WORK_SIDE
) -> Image.Image:
    """The cut-out at the source's original resolution (RGBA, A = predicted alpha)."""
    return Image.fromarray(predict_cutout(model_path, load_rgba(src), max_side=max_side), "RGBA")


def time_native(
    paths: list[str | PathLike], model_path: str | PathLike, max_side: int = MAX_WORK_SIDE,
    model_side: int | None = None, keep_aspect: bool = False, mirror: bool = False,
) -> list[dict]:
    """Per-image wall time of the native pipeline, session creation excluded.

    `seconds` covers decode + inference (+ any resizes) + compositing, i.e. what
    the browser's end-to-end figure is compared with.
    """
    sess = get_session(model_path)
    # Warm-up: the first run allocates arenas and is not representative.
    predict_alpha(sess, np.zeros((64, 64, 4), np.uint8), max_side, model_side, keep_aspect,
                  mirror)
    rows: list[dict] = []
    for p in paths:
        t0 = time.perf_counter()
        rgba = load_rgba(p)
        t1 = time.perf_counter()
        mask = predict_mask(sess, rgba, max_side, model_side, keep_aspect, mirror)
        t2 = time.perf_counter()
        Image.fromarray(compose(rgba, mask), "RGBA")
        t3 = time.perf_counter()
        h, w = rgba.shape[:2]
        rows.append(
            {
                "image": Path(p).name,
                "width": w,
                "height": h,
                "work_size": list(work_size(w, h, max_side)),
                "decode_s": t1 - t0,
                "infer_s": t2 - t1,
                "seconds": t3 - t0,
            }
        )
    return rows


# ImageNet statistics as rembg's SimpleSession uses them for U2-Netp.
_U2_MEAN = (0.485, 0.456, 0.406)
_U2_STD = (0.229, 0.224, 0.225)


def reference_u2netp(original_model_path: str | PathLike, rgb_320: np.ndarray) -> np.ndarray:
    """rembg's U2-Netp pre/post written out in numpy around the ORIGINAL model.

    Literal to rembg (float64 normalisation, min-max of d1) except the final
    rounding (rembg truncates) so it can be compared with the fused graph.
    """
    if rgb_320.shape != (320, 320, 3):
        raise ValueError(f"expected 320x320x3, got {rgb_320.shape}")
    sess = get_session(original_model_path)
    im = rgb_320 / np.max(rgb_320)
    tmp = np.zeros((320, 320, 3))
    for c in range(3):
        tmp[:, :, c] = (im[:, :, c] - _U2_MEAN[c]) / _U2_STD[c]
    x = np.expand_dims(tmp.transpose((2, 0, 1)), 0).astype(np.float32)
    pred = sess.run(None, {sess.get_inputs()[0].name: x})[0][:, 0, :, :]
    ma, mi = np.max(pred), np.min(pred)
    pred = np.squeeze((pred - mi) / (ma - mi))
    return np.clip(np.round(pred * 255), 0, 255).astype(np.uint8)
