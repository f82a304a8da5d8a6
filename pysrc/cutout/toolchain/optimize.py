"""onnxruntime's CPU graph optimisations, done once at build time instead of at every load.

Creating a session of an int8 file on onnxruntime-web spent most of its time optimising
the graph (QDQ groups fused into QLinearConv, the NHWC layout, Conv + activation
fusions): in Node, `u2netp-wasm` 264 ms with optimisations on against 97 ms off,
`isnet-wasm` 681 against 315 ms. The same optimiser runs natively, so the build saves
its result and the engine loads that file with optimisations off (modes.session_options).

What it leaves out: `NchwcTransformer`, the blocked layouts of x86 (AVX2/AVX-512 block
sizes differ between CPUs, and MLAS on WebAssembly has none). Every other choice the
CPU optimiser makes is fixed at compile time, the same for x86 and WebAssembly (the
QDQ rules allow int8 weights on ARM only), so the saved graph is what onnxruntime-web
makes of the QDQ file: bit-identical outputs (tests/models/test_optimize.py; in Node
with onnxruntime-web, the samples' alpha and cut-out bytes), and the same bytes from
every build.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

# Hardware-specific rewrites, not for a file that runs on another machine's CPU.
SKIPPED_OPTIMIZERS = ("NchwcTransformer",)


def cpu_session_options():  # type: ignore[no-untyped-def]
    """Native session options that optimise as onnxruntime-web's WASM EP does for the
    engine's int8 files (modes.session_options with keep_qdq: the QDQ nodes kept)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.disable_quant_qdq", "0")
    return so


def optimize_file(src: Path, dst: Path) -> bytes:
    """Write onnxruntime's optimised graph of `src` to `dst` (kept as is when unchanged,
    as fuse_file does); return its bytes."""
    import onnxruntime as ort

    from .fuse import write_if_changed

    with tempfile.TemporaryDirectory(prefix="cutout-optimize-") as tmp:
        so = cpu_session_options()
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"],
                             disabled_optimizers=list(SKIPPED_OPTIMIZERS))
        return write_if_changed(Path(dst), Path(so.optimized_model_filepath).read_bytes())
