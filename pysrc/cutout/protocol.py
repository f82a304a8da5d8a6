"""The one message envelope shared by service worker, offscreen engine and pages.

Every message is `{target, type, data}`. Each handler ignores messages whose
target is not its own and warns on an unknown type. The type names live here
only: `invoke build` renders them into the generated JavaScript, and the
Python engine imports them, so the two sides cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


# Engine -> page messages travel on this BroadcastChannel (extension origin only):
# unlike chrome.runtime messages they do not wake the service worker each time.
PAGE_CHANNEL = "cutout-pages"


class Target:
    WORKER = "worker"  # the service worker
    OFFSCREEN = "offscreen"  # the offscreen document hosting the engine
    PAGE = "page"  # extension pages (result, popup)
    CONTENT = "content"  # content scripts in web pages
    SEGMENTER = "segmenter"  # Refine's sandboxed frame running OpenCV's GrabCut


class Type:
    # page -> worker: start a job for data.src (the context menu calls the same function)
    START_JOB = "start-job"
    # page -> worker: run (or re-run) the job stored under data.job
    RUN_JOB = "run-job"
    # worker -> offscreen: remove the background of data.src
    REMOVE = "remove"
    # offscreen -> page: progress of one job
    PROGRESS = "progress"
    # offscreen -> page: the job finished (data is a JobResult)
    DONE = "done"
    # offscreen -> page: the job failed (data is a JobFailure)
    FAILED = "failed"
    # worker -> content: which image is under the pointer of the last right-click
    CLICKED_IMAGE = "clicked-image"
    # content -> worker -> offscreen: a person's right-click on an image: the engine starts
    # while the menu is read (nothing about the image is sent). worker -> offscreen:
    # data.unusedMs, after which an engine that has served no request asks to be closed
    WARM_UP = "warm-up"
    # offscreen -> worker: started by a right-click and asked nothing since: close it
    ENGINE_UNUSED = "engine-unused"
    # page -> worker -> offscreen: this device's capabilities, tier and timings
    DEVICE_INFO = "device-info"
    # page -> worker -> offscreen: one ZIP of the cut-outs of data.jobs (Download all)
    ZIP = "zip"
    # page -> worker -> offscreen: release every model session and end the inference
    # worker (its memory back to the system); a no-op when the engine is not running
    RELEASE_MODELS = "release-models"
    # page -> worker -> offscreen: Refine's region tool: the model re-run on data.box
    # ({x, y, w, h}, image px) of finished job data.job; answers {url, box, model, ms}
    REGION = "region"
    # segmenter -> page: OpenCV is loaded and compiled; strokes can re-segment
    SEGMENTER_READY = "segmenter-ready"
    # page -> segmenter: GrabCut on data (lib/resegment.js grabCutInput's fields and an
    # id); answers RESEGMENTED {id, fg (Uint8Array, 1 = foreground), ms} or {id, error}
    RESEGMENT = "resegment"
    RESEGMENTED = "resegmented"


@dataclass(frozen=True)
class Envelope:
    target: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "type": self.type, "data": self.data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Envelope:
        if not isinstance(raw, dict) or "target" not in raw or "type" not in raw:
            raise ValueError(f"not a message envelope: {raw!r}")
        return cls(raw["target"], raw["type"], dict(raw.get("data") or {}))


@dataclass(frozen=True)
class Job:
    """What the user asked for; stored by the worker in chrome.storage.session."""

    id: str
    src: str  # http(s):, data: or upload:<id>/<name> (a file the user opened)
    mode: str  # a mode name, or "auto": the default of this device's tier
    model_host: str = ""  # base URL that serves the models not bundled
    backend: str = "auto"  # "auto" (the tier's), "webgpu" or "wasm"
    model_side: int | None = None  # dynamic models: input side instead of the mode's
    webgpu_timeout_ms: float | None = None  # a WebGPU run slower than this falls back
    fetch_timeout_ms: float | None = None  # the image must arrive within this (default 60 s)


@dataclass(frozen=True)
class Progress:
    job: str
    stage: str
    detail: str = ""

    def envelope(self) -> Envelope:
        return Envelope(Target.PAGE, Type.PROGRESS, asdict(self))


@dataclass(frozen=True)
class JobResult:
    job: str
    url: str  # blob: URL of the PNG, owned by the offscreen document
    filename: str  # suggested download name, "<stem>-cutout.png"
    width: int
    height: int
    bytes: int
    model: str
    backend: str  # e.g. "wasm (4 threads)"
    timings_ms: dict[str, float]
    notes: tuple[str, ...] = ()
    original_url: str = ""  # blob: URL of the image as fetched, for before/after
    mode: str = ""  # the mode it ran in
    fallback: str = ""  # why it did not run on WebGPU although asked / chosen, if so

    def envelope(self) -> Envelope:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return Envelope(Target.PAGE, Type.DONE, data)


@dataclass(frozen=True)
class JobFailure:
    job: str
    code: str
    message: str  # one sentence a user understands

    def envelope(self) -> Envelope:
        return Envelope(Target.PAGE, Type.FAILED, asdict(self))


class CutoutError(Exception):
    """A failure the user should read; `code` is stable for tests and telemetry-free logs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def js_constants() -> dict[str, dict[str, str]]:
    """Targets and types as plain dicts, for the Jinja2-rendered JavaScript."""
    pick = lambda cls: {k: v for k, v in vars(cls).items() if k.isupper()}  # noqa: E731
    return {"Target": pick(Target), "Type": pick(Type), "PAGE_CHANNEL": PAGE_CHANNEL}
