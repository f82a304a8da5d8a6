"""Heavy int8 convolutions run in bands of rows (toolchain/bands.py): the same bytes
out, at most SCRATCH_BUDGET of scratch per call in the shipped WASM files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cutout.toolchain import bands
from cutout.toolchain import quantize as Q


def _float_model() -> onnx.ModelProto:
    """Convolutions with the shapes that make band edges hard: odd heights, stride 2,
    dilation 2, asymmetric padding, a pointwise one, a Shape reading a conv output."""
    rng = np.random.default_rng(7)
    specs = [  # name, c_in, c_out, kernel, stride, dilation, pads
        ("a", 3, 16, 3, 1, 1, [1, 1, 1, 1]),
        ("b", 16, 16, 3, 1, 2, [2, 2, 2, 2]),
        ("c", 16, 8, 3, 2, 1, [1, 1, 1, 1]),
        ("d", 8, 8, 5, 1, 1, [1, 2, 3, 2]),
        ("e", 8, 4, 1, 1, 1, [0, 0, 0, 0]),
    ]
    nodes, inits, x = [], [], "x"
    for name, c_in, c_out, k, s, d, pads in specs:
        w = rng.normal(0, 0.3, (c_out, c_in, k, k)).astype(np.float32)
        b = rng.normal(0, 0.1, c_out).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
        nodes += [helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_y"], name=name,
                                   kernel_shape=[k, k], strides=[s, s], dilations=[d, d], pads=pads),
                  helper.make_node("Relu", [f"{name}_y"], [f"{name}_r"], name=f"{name}_relu")]
        x = f"{name}_r"
    nodes.append(helper.make_node("Shape", ["b_y"], ["b_shape"], name="b_shape"))
    graph = helper.make_graph(
        nodes, "bands", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 37, 29])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None),
         helper.make_tensor_value_info("b_shape", TensorProto.INT64, [4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def _session(model: onnx.ModelProto, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "0")
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def qdq(tmp_path_factory) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    photos = [rng.uniform(-1, 1, (1, 3, 37, 29)).astype(np.float32) for _ in range(4)]
    ranges = tmp_path_factory.mktemp("ranges") / "ranges.json"
    return Q.static_int8(_float_model(), photos, ranges, keep_float=[], method="minmax")


def test_bands_compute_the_same_bytes_and_stay_integer_kernels(qdq, tmp_path):
    split, names = bands.split_heavy_convs(qdq, budget=2000)
    assert sorted(names) == ["a", "b", "c", "d", "e"]
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = rng.uniform(-1, 1, (1, 3, 37, 29)).astype(np.float32)
        want, got = _session(qdq).run(None, {"x": x}), _session(split).run(None, {"x": x})
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)
    # every band is still DequantizeLinear -> Conv -> QuantizeLinear: a QLinearConv
    _session(split, tmp_path / "opt.onnx")
    optimized = onnx.load(str(tmp_path / "opt.onnx"))
    band_count = sum(n.op_type == "Conv" for n in split.graph.node)
    assert band_count > 10
    assert sum(n.op_type == "QLinearConv" for n in optimized.graph.node) == band_count
    assert not any(n.op_type in ("Conv", "FusedConv") for n in optimized.graph.node)


def test_a_roomy_budget_leaves_the_model_alone(qdq):
    split, names = bands.split_heavy_convs(qdq, budget=1 << 30)
    assert names == [] and split == qdq


@pytest.mark.parametrize("model_id", ["u2netp-wasm", "isnet-wasm"])
def test_shipped_int8_convolutions_fit_the_scratch_budget(built_models, model_id):
    """Read in the QDQ graph the shipped file is optimised from (the same convolutions,
    test_optimize.py), whose shapes are static."""
    from cutout.toolchain.models import qdq_path

    assert built_models[model_id].optimized
    model = onnx.load(str(qdq_path(model_id)))
    shapes = bands._static_shapes(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    weights = {t.name: t for t in model.graph.initializer}
    heaviest, split = 0, 0
    for conv in model.graph.node:
        if conv.op_type != "Conv" or not all(
                getattr(producer.get(i), "op_type", "") == "DequantizeLinear" for i in conv.input[:2]):
            continue  # a float convolution: MLAS expands its input in segments
        c_out, c_in, kh, kw = weights[producer[conv.input[1]].input[0]].dims
        out_h, out_w = shapes[conv.output[0]][2:]
        heaviest = max(heaviest, bands.scratch_bytes(c_in, (kh, kw), c_out, (out_h, out_w)))
        split += "/band" in conv.name
    assert split >= 2  # without bands: 138 MB (u2netp-wasm), 352 MB (isnet-wasm)
    assert heaviest <= bands.SCRATCH_BUDGET
