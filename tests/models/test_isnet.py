"""ISNet, balanced tier: our any-size, int8-weight, fused conversion against the
published fp16 model. Thresholds come from measurements: int8 vs fp16 agreed
at IoU 0.997 mean / 0.993 worst on 8 davis photos at 1024 (docs/MODELS.md);
a broken conversion (wrong normalisation, lost dynamic size) falls far below."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from cutout.native.pipeline import get_session

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def isnet_paths(built_models):
    from cutout.toolchain.fetch import DEFAULT_CACHE
    from cutout.toolchain.models import DEFAULT_OUT, load_sources

    source = next(s for s in load_sources() if s.id == "isnet")
    return DEFAULT_OUT / built_models["isnet"].file, source.fetch(DEFAULT_CACHE)


def _original_alpha(session: ort.InferenceSession, rgb: np.ndarray) -> np.ndarray:
    """The package's own pipeline on an already-sized image: (v - 128) / 256, x255."""
    x = ((rgb.astype(np.float32) - 128.0) / 256.0).transpose(2, 0, 1)[None]
    y = session.run(None, {"input": x})[0][0, 0].astype(np.float32)
    return np.clip(y * 255, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_int8_fused_agrees_with_fp16_original(isnet_paths, name):
    fused, original = isnet_paths
    rgb = np.asarray(Image.open(SAMPLES / f"{name}.jpg").convert("RGB").resize((1024, 1024)))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    ours = get_session(fused).run(["alpha"], {"rgba": rgba[None],
                                              "size": np.array([1024, 1024], np.int32)})[0][0]
    theirs = _original_alpha(ort.InferenceSession(str(original)), rgb)
    fa, fb = ours >= 128, theirs >= 128
    iou = (fa & fb).sum() / max(1, (fa | fb).sum())
    mae = np.abs(ours.astype(float) - theirs).mean() / 255
    assert iou >= 0.985 and mae <= 0.01, (iou, mae)


@pytest.mark.parametrize("side", [512, 768, 1536])
def test_any_size_runs_and_keeps_the_image_size(isnet_paths, side):
    fused, _ = isnet_paths
    rgb = np.asarray(Image.open(SAMPLES / "coffee.jpg").convert("RGB"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    alpha = get_session(fused).run(["alpha"], {"rgba": rgba[None],
                                               "size": np.array([side, side], np.int32)})[0][0]
    assert alpha.shape == rgb.shape[:2]
    assert 0.1 < (alpha >= 128).mean() < 0.9  # a cup, not an empty or full mask


def test_weights_are_int8_and_size_is_under_50_mb(isnet_paths):
    import onnx

    fused, _ = isnet_paths
    model = onnx.load(str(fused), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    assert "DequantizeLinear" in ops
    assert not ops & {"ConvInteger", "DynamicQuantizeLinear", "MatMulInteger"}  # not on WebGPU
    assert fused.stat().st_size < 50_000_000


# ---------------------------------------------------------------- isnet-wasm (static int8)


@pytest.fixture(scope="module")
def wasm_path(built_models):
    from cutout.toolchain.models import DEFAULT_OUT

    return DEFAULT_OUT / built_models["isnet-wasm"].file


def _alpha(path: Path, rgba: np.ndarray, side: int = 1024) -> np.ndarray:
    """The alpha of a 1024² feed; `size` only for a file that takes it (isnet-wasm is
    fused at a fixed 1024²)."""
    session = get_session(path)
    feeds = {"rgba": rgba[None]}
    if any(i.name == "size" for i in session.get_inputs()):
        feeds["size"] = np.array([side, side], np.int32)
    return session.run(["alpha"], feeds)[0][0]


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_static_int8_agrees_with_the_webgpu_file(isnet_paths, wasm_path, name):
    """Same network, integer compute: the measured agreement on these photos is IoU
    0.96-0.99 (the calibration set: an upper bound); a wrong range or a quantised
    output head gives a mask far off (a MinMax-calibrated file: 0.84 mean)."""
    rgb = np.asarray(Image.open(SAMPLES / f"{name}.jpg").convert("RGB").resize((1024, 1024)))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    ours, ref = _alpha(wasm_path, rgba) >= 128, _alpha(isnet_paths[0], rgba) >= 128
    iou = (ours & ref).sum() / max(1, (ours | ref).sum())
    assert iou >= 0.95, iou


def test_static_int8_is_integer_compute_with_a_float_head(wasm_path, built_models):
    import onnx

    from cutout.toolchain import isnet
    from cutout.toolchain.bands import unbanded
    from cutout.toolchain.models import qdq_path

    # its QDQ graph, before onnxruntime fuses each group into a QLinearConv (test_optimize)
    model = onnx.load(str(qdq_path("isnet-wasm")), load_external_data=False)
    quantised = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    producer = {o: n for n in model.graph.node for o in n.output}
    int8_convs = [c for c in convs if producer.get(c.input[0]) is not None
                  and producer[c.input[0]].op_type == "DequantizeLinear"]
    assert len(int8_convs) >= 90 and quantised  # most Convs take quantised activations
    head = next(c for c in convs if c.name == "/side1/Conv")
    inits = {t.name: t for t in model.graph.initializer}
    assert inits[head.input[1]].data_type == onnx.TensorProto.FLOAT  # the mask's conv: float
    # the full-resolution stage stays float but for its three heavy convolutions
    stage1 = {unbanded(c.name): c in int8_convs for c in convs
              if c.name.startswith(("/conv_in/", "/stage1/"))}  # bands: one entry per conv
    assert {n for n, q in stage1.items() if q} == set(isnet.QDQ_INT8_IN_FLOAT_STAGE), stage1
    assert len(stage1) == 15
    assert not any(n.op_type == "Shape" and producer.get(n.input[0]) is not None
                   and producer[n.input[0]].op_type == "DequantizeLinear" for n in model.graph.node)
    assert built_models["isnet-wasm"].int8_compute and not built_models["isnet"].int8_compute
    assert wasm_path.stat().st_size < 50_000_000


def test_static_int8_builds_from_the_committed_ranges_without_inference(tmp_path, monkeypatch):
    """The lock file makes the build machine-independent: with it present no calibration
    input is made at all."""
    from cutout.toolchain import isnet

    assert isnet.QDQ_RANGES.is_file()
    for name in ("calibration_inputs", "augmented_calibration_inputs"):
        monkeypatch.setattr(isnet, name, lambda *a, **k: pytest.fail("calibrated"))
    # the recipe's output equals the shipped, manifest-checked file's source graph
    from cutout.toolchain.fetch import DEFAULT_CACHE

    original = isnet.fetch_model(DEFAULT_CACHE)
    model = isnet.static_int8(original)
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
