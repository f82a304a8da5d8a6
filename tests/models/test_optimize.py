"""The int8 files ship optimised by onnxruntime for its CPU EP (toolchain/optimize.py):
the engine loads them with optimisations off, so they must be exactly what optimising
their QDQ graph at load would give."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cutout.native.pipeline import load_rgba
from cutout.toolchain.optimize import SKIPPED_OPTIMIZERS, cpu_session_options
from cutout.toolchain.samples import SAMPLES_DIR


def _qdq_convolutions(model: onnx.ModelProto) -> int:
    """DequantizeLinear -> Conv -> QuantizeLinear groups: onnxruntime's QLinearConv."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[str]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.op_type)
    return sum(n.op_type == "Conv"
               and getattr(producer.get(n.input[0]), "op_type", "") == "DequantizeLinear"
               and "QuantizeLinear" in consumers.get(n.output[0], [])
               for n in model.graph.node)


@pytest.mark.parametrize("model_id", ["u2netp-wasm", "isnet-wasm"])
def test_the_saved_graph_computes_what_its_qdq_graph_does(built_models, model_id):
    from cutout.toolchain.models import DEFAULT_OUT, qdq_path

    entry = built_models[model_id]
    assert entry.optimized and entry.int8_compute
    shipped, qdq = DEFAULT_OUT / entry.file, qdq_path(model_id)
    saved = onnx.load(str(shipped))
    # no x86 blocked layout (MLAS on WebAssembly has none); every int8 group fused
    assert not any(n.domain == "com.microsoft.nchwc" for n in saved.graph.node)
    assert sum(n.op_type == "QLinearConv" for n in saved.graph.node) \
        == _qdq_convolutions(onnx.load(str(qdq))) > 0

    as_is = ort.SessionOptions()
    as_is.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    loaded = ort.InferenceSession(str(shipped), as_is, providers=["CPUExecutionProvider"])
    optimised_at_load = ort.InferenceSession(
        str(qdq), cpu_session_options(), providers=["CPUExecutionProvider"],
        disabled_optimizers=list(SKIPPED_OPTIMIZERS))
    feeds = {"rgba": load_rgba(SAMPLES_DIR / "chelsea.jpg")[None]}
    for ours, theirs in zip(loaded.run(None, feeds), optimised_at_load.run(None, feeds)):
        assert np.array_equal(ours, theirs)
