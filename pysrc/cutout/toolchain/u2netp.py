"""U²-Netp (Fast) for integer compute on WASM: its five heaviest convolutions in int8.

On onnxruntime-web's WASM backend U²-Netp at 320² is pure convolution arithmetic
(39.5 GFLOP, ~43 GFLOP/s on 2 threads, docs/MODELS.md), and five full-resolution 3x3
convolutions are 60 % of its time. Quantising the whole network statically broke the
mask (agreement with fp32 0.1-0.6: one layer alone, Conv_787, drops it to 0.67), so
only those five are quantised (uint8 activations per tensor, MinMax ranges; int8
weights per channel): onnxruntime fuses each DQ -> Conv -> Q into a QLinearConv, and
everything else stays fp32.

The five were chosen on scikit-image photos only (never davis345): the convolutions
ordered by their time in onnxruntime-web, each kept if the mask's agreement with fp32
(IoU at 0.5 on held-out photos and crops whose fp32 mask covers >= 2 % of them) stayed
>= 0.99 mean and >= 0.95 worst; below these five the rest add ~0.1 % of speed each
while their agreement only falls (docs/MODELS.md, "U²-Netp int8").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from .fetch import DEFAULT_CACHE

# The rembg export's node names: stage1d's input conv (128 -> 64 at 320², 15 GFLOP),
# the output-side 64-channel convs at full resolution and stage2d's input conv.
INT8_NODES = ("Conv_810", "Conv_942", "Conv_132", "Conv_680", "Conv_812")
QDQ_RANGES = Path(__file__).resolve().parents[3] / "models" / "u2netp-wasm.ranges.json"
INPUT_SIDE = 320
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> 1 x 3 x 320 x 320 float32 as rembg (and the fused graph) feed
    U²-Netp: shrunk to 320², divided by the image's maximum, ImageNet mean and std."""
    from PIL import Image

    x = np.asarray(Image.fromarray(rgb).resize((INPUT_SIDE, INPUT_SIDE), Image.BILINEAR),
                   np.float32)
    x = x / max(float(x.max()), 1e-6)
    return ((x - _MEAN) / _STD).transpose(2, 0, 1)[None].astype(np.float32)


def calibration_inputs(cache: Path = DEFAULT_CACHE) -> list[np.ndarray]:
    """The scikit-image calibration photos whole, mirrored and centre-cropped by a third
    (as for ISNet: 18 views)."""
    from PIL import Image

    from .quantize import calibration_photos

    out = []
    for p in calibration_photos(cache):
        rgb = np.asarray(Image.open(p).convert("RGB"))
        h, w = rgb.shape[:2]
        for view in (rgb, rgb[:, ::-1], rgb[h // 6: h - h // 6, w // 6: w - w // 6]):
            out.append(preprocess(np.ascontiguousarray(view)))
    return out


def prepared(original: Path) -> onnx.ModelProto:
    """The export at opset 13 (per-channel QDQ) with inferred shapes, as the quantiser
    wants it; no numeric rewrite (builds stay byte-identical)."""
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = version_converter.convert_version(onnx.load(str(original)), 13)
    with tempfile.TemporaryDirectory(prefix="cutout-u2netp-") as tmp:
        src, dst = Path(tmp) / "o13.onnx", Path(tmp) / "pre.onnx"
        onnx.save(model, str(src))
        quant_pre_process(str(src), str(dst), skip_optimization=True, skip_symbolic_shape=True)
        return onnx.load(str(dst))


def static_int8(original: Path, ranges: Path = QDQ_RANGES,
                cache: Path = DEFAULT_CACHE) -> onnx.ModelProto:
    """U²-Netp with INT8_NODES in int8 compute, from the committed ranges (`ranges`;
    recalibrated on the scikit-image photos when that file is absent)."""
    from . import quantize as Q

    inputs = None if Path(ranges).is_file() else calibration_inputs(cache)
    return Q.static_int8(prepared(original), inputs, Path(ranges), keep_float=[],
                         only=list(INT8_NODES), method="minmax")
