"""`invoke remove`: run image files through the real extension engine.

The files are served from 127.0.0.1 (a page-independent origin, like any web
image), each one goes through the same worker entry point as the context
menu, and the PNG the result page offers for download is written to disk.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from selenium.common.exceptions import WebDriverException

from .chromium import ExtensionBrowser, JobOutcome, browser_args
from .servers import ModelHostHandler, StaticServer


@dataclass(frozen=True)
class FileReport:
    path: str
    ok: bool
    output: str = ""
    error: str = ""
    width: int = 0
    height: int = 0
    model: str = ""
    backend: str = ""
    fallback: str = ""  # why it did not run on the backend asked for, if so
    timings_ms: dict[str, float] | None = None
    wall_s: float = 0.0
    mode: str = ""  # the mode that ran (auto resolved to the tier's)


def remove_files(paths: list[Path], out_dir: Path, extension_dir: Path,
                 mode: str | None = None, models_dir: Path | None = None,
                 backend: str = "auto",
                 on_report: Callable[[FileReport], None] | None = None) -> list[FileReport]:
    """Cut out each file; models not bundled are served from `models_dir` (the
    build's converted models) as the model host. `on_report` hears of each file
    as soon as it is done (the CLI's progress)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reports: list[FileReport] = []

    def add(report: FileReport) -> None:
        reports.append(report)
        if on_report is not None:
            on_report(report)

    written: set[Path] = set()
    with tempfile.TemporaryDirectory(prefix="cutout-serve-") as tmp:
        served: dict[Path, str] = {}
        for index, path in enumerate(paths):
            link = Path(tmp) / f"{index}" / path.name  # one folder each: names may repeat
            link.parent.mkdir()
            if path.is_file():
                link.symlink_to(path.resolve())
            served[path] = f"{index}/{quote(path.name)}"
        models = models_dir or extension_dir.parent / "models"
        with StaticServer(Path(tmp)) as server, StaticServer(models, ModelHostHandler) as host:
            browser: ExtensionBrowser | None = None
            try:
                for path in paths:
                    if not path.is_file():
                        add(FileReport(str(path), False, error="no such file"))
                        continue
                    if browser is None:
                        browser = ExtensionBrowser(extension_dir, browser_args(backend))
                        browser.set_settings(modelHost=host.url(), **webgpu_settings(backend))
                    try:
                        # SwiftShader's WebGPU takes minutes per photo: allow for it.
                        outcome = browser.remove(server.url(served[path]), mode, backend=backend,
                                                 timeout=900 if backend == "webgpu" else 300)
                    except (WebDriverException, TimeoutError) as e:
                        # A crashed tab or a hung job costs this file, not the others:
                        # start a fresh browser for the next one.
                        add(FileReport(str(path), False, error=f"browser failure: {e}"))
                        browser.close()
                        browser = None
                        continue
                    add(_report(path, outcome, out_dir, written))
            finally:
                if browser is not None:
                    browser.close()
    (out_dir / "timings.json").write_text(json.dumps([asdict(r) for r in reports], indent=2) + "\n")
    return reports


def webgpu_settings(backend: str) -> dict[str, int]:
    """A run that asks for WebGPU waits for it: SwiftShader, the only adapter of
    headless Chromium here, takes minutes where the engine's hang guard is 60 s."""
    return {"webgpuTimeoutMs": 900_000} if backend == "webgpu" else {}


def _report(path: Path, outcome: JobOutcome, out_dir: Path, taken: set[Path]) -> FileReport:
    if outcome.state != "done":
        return FileReport(str(path), False, error=outcome.error, wall_s=round(outcome.wall_s, 3))
    target, n = out_dir / f"{path.stem}.png", 1
    while target in taken:  # a/x.jpg and b/x.png in one run: x.png, x-2.png
        n += 1
        target = out_dir / f"{path.stem}-{n}.png"
    taken.add(target)
    target.write_bytes(outcome.png)
    r = outcome.result
    return FileReport(str(path), True, str(target), "", r["width"], r["height"], r["model"],
                      r["backend"], r.get("fallback", ""), r["timings_ms"],
                      round(outcome.wall_s, 3), r.get("mode", ""))
