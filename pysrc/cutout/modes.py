"""Processing modes the user picks (Fast / Balanced / Portrait) and shared limits.

Pure Python: imported by the browser engine (Pyodide), the native reference
pipeline and the toolchain, so both sides agree on work sizes and models.
"""

from __future__ import annotations

from dataclasses import dataclass

# Images larger than this on their long side are downscaled before inference;
# the alpha is upscaled back so the cut-out keeps the original resolution.
# It bounds memory (a 12000x9000 photo would need 1.7 GB as float RGBA).
MAX_WORK_SIDE = 2048

def session_options(backend: str, keep_qdq: bool = False,
                    optimized: bool = False) -> dict[str, object]:
    """onnxruntime-web session options for a model or pixel graph on `backend`.

    disable_quant_qdq: fold weight-only DequantizeLinear into fp32 weights at load;
    otherwise onnxruntime keeps the QDQ pairs and int8 models run ~25 % slower than
    fp32 (measured natively; ORT-web flattens `extra` to "a.b" keys). Static QDQ
    files (`keep_qdq`) need the pairs: they become integer kernels. A file saved
    `optimized` by the build (toolchain/optimize.py) is loaded as it is: optimising it
    again finds nothing to do and took most of its session's creation.

    No memory pattern, no arena: onnxruntime-web passes `!!enableMemPattern`, so both are
    off unless set, and with the pattern on a second run of the same session plans one
    more block beside what the first run's tensors left in the WASM heap, which never
    shrinks (onnxruntime-web 1.30 in Node, 854x480 feed: `isnet-wasm` 455 -> 643 MB,
    `u2netp-wasm` 252 -> 363 MB, the same speed). Set here so that a new default cannot
    bring it back (tests/models/test_wasm_heap.py)."""
    memory: dict[str, object] = {"enableMemPattern": False, "enableCpuMemArena": False}
    if optimized:
        return {"executionProviders": [backend], "graphOptimizationLevel": "disabled", **memory}
    return {"executionProviders": [backend], "graphOptimizationLevel": "all", **memory,
            "extra": {"session": {"disable_quant_qdq": "0" if keep_qdq else "1"}}}


# The bundled pixel graphs the engine always uses: offscreen.js creates their
# sessions while Pyodide boots.
RESIZE_GRAPH = "models/resize.onnx"
# The export, in three graphs so that it runs in strips of photo rows (cutout.strips):
# the photo shrunk to the mask's size, the fields there, then the cut-out strip by strip.
COMPOSE_DOWNSCALE_GRAPH = "models/compose-downscale.onnx"
COMPOSE_FIELDS_GRAPH = "models/compose-fields.onnx"
COMPOSE_STRIP_GRAPH = "models/compose-strip.onnx"
PRELOADED_GRAPHS = (RESIZE_GRAPH, COMPOSE_DOWNSCALE_GRAPH, COMPOSE_FIELDS_GRAPH,
                    COMPOSE_STRIP_GRAPH)

# Cache Storage bucket of downloaded models (the engine writes it, the options page clears it).
MODEL_CACHE = "cutout-models-v1"
# localStorage (the extension's origin): the model the engine loaded last on WASM, which
# offscreen.js loads again while Pyodide boots (engine/models.py writes it).
WARM_MODEL_KEY = "cutout-warm-model"
# Cache Storage bucket of the engine's start-up snapshot (offscreen.js: Pyodide's memory
# right after its own start, before anything of ours or of an image; ~7 MB gzipped).
ENGINE_CACHE = "cutout-engine-v1"

# Images above this many pixels are refused with a clear message: from the file
# header before decoding when the format is known (engine/imagesize.py), else
# after decoding (a 16k x 16k RGBA bitmap is 1 GiB; composing needs as much again).
MAX_PIXELS = 200_000_000
# Refine's "Re-run on a box" refuses boxes larger than this: the point is more of the
# model's pixels on a part (a hand, hair), and a box this large is most of a photo.
MAX_REGION_PIXELS = 16_000_000

# The chosen image must arrive within this time, and be at most this large: a server
# that never finishes gets a message and a "Try again" instead of a spinner forever.
FETCH_TIMEOUT_MS = 60_000
MAX_DOWNLOAD_BYTES = 300 << 20  # a 200 MP PNG (MAX_PIXELS) is rarely larger

# A model session unused this long is released; when none is left the inference
# worker is ended too (its WASM heap, which never shrinks, back to the system);
# the next job of that mode loads it again (~0.3-1 s from the extension or cache).
IDLE_SESSION_MS = 5 * 60_000

# An engine started by a right-click on an image (its start hidden behind the menu) that
# has served no request this long closes: a right-click to save or copy an image does not
# leave Pyodide and a preloaded model (~200 MB) in memory for the rest of the session.
UNUSED_ENGINE_MS = 3 * 60_000

# Bytes per Range request when downloading a model; a cut download resumes per part.
MODEL_CHUNK_BYTES = 4 << 20


# Models that take any size want multiples of this (five 2x poolings).
SIZE_MULTIPLE = 32


@dataclass(frozen=True)
class Mode:
    name: str
    label: str
    model: str
    max_side: int  # work size cap (the image the graph sees)
    model_side: int | None = None  # dynamic models: their input's (long) side; None = fixed
    keep_aspect: bool = False  # dynamic models: keep the image's aspect instead of a square
    # The file run on WASM when it differs from `model` (the same network, quantised for
    # integer compute, which only the CPU EP has): same input, same answer within 1-2 %.
    wasm_model: str | None = None
    # Test-time augmentation: a second pass on the mirrored photo, averaged in
    # (toolchain.passes); twice the model time.
    mirror: bool = False

    def model_on(self, backend: str) -> str:
        return self.wasm_model if backend == "wasm" and self.wasm_model else self.model


MODES: dict[str, Mode] = {
    # U2-Netp at 320: bundled, no download, ~1 s on WASM.
    "fast": Mode("fast", "Fast", "u2netp", MAX_WORK_SIDE, wasm_model="u2netp-wasm"),
    # ISNet at the 1024 square it was trained on (other sizes measured worse).
    "balanced": Mode("balanced", "Balanced", "isnet", MAX_WORK_SIDE, 1024, wasm_model="isnet-wasm"),
    # Balanced plus a mirrored pass averaged in: the best IoU measured on davis345
    # (docs/MODELS.md "Quality"), for twice Balanced's model time.
    "quality": Mode("quality", "Quality", "isnet", MAX_WORK_SIDE, 1024, wasm_model="isnet-wasm",
                    mirror=True),
    # MODNet matting: soft alpha for hair; people only (poor on other subjects).
    "portrait": Mode("portrait", "Portrait (hair)", "modnet", MAX_WORK_SIDE, 512, keep_aspect=True),
}
# The default: the engine picks the tier's mode (cutout.tiers: Balanced on a GPU,
# Fast on the CPU). The user may pin any mode instead.
AUTO_MODE = "auto"
DEFAULT_MODE = AUTO_MODE


def mode_labels() -> dict[str, str]:
    """What the popup and options page offer, in order: automatic, then each mode."""
    return {AUTO_MODE: "Automatic (best for this device)",
            **{m.name: m.label for m in MODES.values()}}


def pipeline_options(mode: Mode) -> dict[str, object]:
    """Keyword arguments of the native pipeline (predict_alpha, time_native) for `mode`."""
    return {"max_side": mode.max_side, "model_side": mode.model_side,
            "keep_aspect": mode.keep_aspect, "mirror": mode.mirror}


def get_mode(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        known = ", ".join(sorted(MODES))
        raise ValueError(f"unknown mode {name!r} (known: {known})") from None


def model_input_size(width: int, height: int, model_side: int,
                     keep_aspect: bool = False) -> tuple[int, int]:
    """(height, width) a dynamic model runs at: a `model_side` square (multiple of 32),
    or with `keep_aspect` the image's aspect with the long side at `model_side`.

    Squashing the aspect ratio into a square is what ISNet was trained on, and it
    measured clearly better than keeping the aspect or the image's own size
    (davis345, 29 photos, IoU: 1024 square .727, 1024 long side .682, own size
    .640; docs/MODELS.md). `width` and `height` stay in the signature so a
    MODNet keeps the aspect (`keep_aspect`).
    """

    def fit(side: float) -> int:
        return max(SIZE_MULTIPLE, round(side / SIZE_MULTIPLE) * SIZE_MULTIPLE)

    if not keep_aspect:
        return fit(model_side), fit(model_side)
    scale = model_side / max(width, height)
    return fit(height * scale), fit(width * scale)


def work_size(width: int, height: int, max_side: int = MAX_WORK_SIDE) -> tuple[int, int]:
    """Size the model pipeline sees: the long side capped at `max_side`."""
    if width < 1 or height < 1:
        raise ValueError(f"image has no pixels ({width}x{height})")
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
