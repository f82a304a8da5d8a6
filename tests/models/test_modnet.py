"""MODNet, portrait tier: fused int8 (with WebGPU-safe padding) against the
original fp32 export, on the same resized pixels.

Measured (2026-11-25): astronaut IoU 0.9999 / MAE 0.0001, chelsea 0.9984 / 0.0015;
coffee (no person: a mid-grey matte that int8 noise flips) 0.92 / 0.030, so the
thresholds hold for portrait-like photos and a broken conversion misses them by far."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from cutout.modes import get_mode, model_input_size
from cutout.native.pipeline import get_session

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def modnet_paths(built_models):
    from cutout.toolchain.fetch import DEFAULT_CACHE
    from cutout.toolchain.models import DEFAULT_OUT, load_sources

    source = next(s for s in load_sources() if s.id == "modnet")
    return DEFAULT_OUT / built_models["modnet"].file, source.fetch(DEFAULT_CACHE)


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_int8_fused_agrees_with_fp32_original(modnet_paths, name):
    fused, original = modnet_paths
    rgb = np.asarray(Image.open(SAMPLES / f"{name}.jpg").convert("RGB"))
    mode = get_mode("portrait")
    h, w = model_input_size(rgb.shape[1], rgb.shape[0], mode.model_side, mode.keep_aspect)
    small = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))
    rgba = np.dstack([small, np.full(small.shape[:2], 255, np.uint8)])
    ours = get_session(fused).run(["alpha"], {"rgba": rgba[None],
                                              "size": np.array([h, w], np.int32)})[0][0]
    session = ort.InferenceSession(str(original))
    x = ((small.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    theirs = np.clip(session.run(None, {session.get_inputs()[0].name: x})[0][0, 0] * 255, 0, 255)
    theirs = theirs.round().astype(np.uint8)
    fa, fb = ours >= 128, theirs >= 128
    iou = (fa & fb).sum() / max(1, (fa | fb).sum())
    mae = np.abs(ours.astype(float) - theirs).mean() / 255
    assert iou >= 0.99 and mae <= 0.005, (iou, mae)


def test_weight_only_int8_and_padded_for_webgpu(modnet_paths):
    import onnx

    fused, _ = modnet_paths
    model = onnx.load(str(fused))
    ops = {n.op_type for n in model.graph.node}
    assert "DequantizeLinear" in ops and "Pad" in ops
    assert not ops & {"ConvInteger", "DynamicQuantizeLinear", "MatMulInteger"}
    assert fused.stat().st_size <= 7_000_000
