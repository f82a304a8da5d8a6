"""Speed, memory and quality benchmark: the extension in headless Chromium vs
the native onnxruntime pipeline, on the same fused model and the same images,
in one run (absolute times vary between machines; the ratio is what compares).

Images: the first N photos of ../shared/eval/davis345 when present (with their
ground-truth masks, so quality is scored too), else the repository samples.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import threading
import time
from typing import Any
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .evaluate import DAVIS, RESULTS
from .headless.chromium import ExtensionBrowser, browser_args
from .headless.runner import webgpu_settings
from .headless.servers import ModelHostHandler, StaticServer
from .modes import get_mode, pipeline_options
from .native import metrics
from .native.pipeline import get_session, load_rgba, predict_alpha, time_native
from .toolchain.fetch import REPO_ROOT as ROOT


@dataclass
class ImageRow:
    image: str
    width: int
    height: int
    native_s: float
    native_infer_s: float
    browser_s: float
    browser_infer_s: float
    browser_wall_s: float
    agreement_iou: float  # browser alpha vs native alpha
    iou: float | None = None  # browser alpha vs ground truth
    mae: float | None = None
    boundary_f: float | None = None
    page_stall_ms: float = 0.0  # longest the result page could not react during the job


@dataclass
class BenchReport:
    date: str
    machine: str
    mode: str
    model: str
    backend: str
    images: int
    cold_start_s: float
    median_native_s: float
    median_browser_s: float
    median_ratio: float  # browser / native, end to end, per image
    peak_browser_rss_mb: float
    max_page_stall_ms: float = 0.0  # longest result-page stall over all jobs (goal <= 50)
    # Browser RSS after the cold job and after the last one: flat when nothing leaks.
    rss_after_first_job_mb: float = 0.0
    rss_after_last_job_mb: float = 0.0
    # PSS (MemorySampler): the peak, before the first job (the browser with the
    # extension, engine not started), after the last job, after the models' release.
    peak_browser_pss_mb: float = 0.0
    pss_before_first_job_mb: float = 0.0
    pss_after_last_job_mb: float = 0.0
    pss_after_release_mb: float = 0.0
    # The engine started again in the running browser (its offscreen document closed):
    # boot from the Pyodide snapshot, model from the extension/cache, first inference.
    restart_s: float = 0.0
    cold_timings_ms: dict[str, float] = field(default_factory=dict)  # incl. boot_* milestones
    restart_timings_ms: dict[str, float] = field(default_factory=dict)
    # Chromium quit and started again on the same profile (relaunched_browser): the
    # issue's "browser start -> first cut-out with the model cached".
    browser_restart_s: float = 0.0
    browser_restart_timings_ms: dict[str, float] = field(default_factory=dict)
    # The same restart as a person meets it (menu_after_restart): a right-click on the
    # photo in a page, MENU_READ_S reading the menu, "Remove background"; seconds from
    # that choice to the cut-out (the right-click started the engine meanwhile).
    menu_after_restart_s: float = 0.0
    menu_after_restart_timings_ms: dict[str, float] = field(default_factory=dict)
    rows: list[ImageRow] = field(default_factory=list)


def pick_images(limit: int) -> tuple[list[Path], Path | None]:
    if (DAVIS / "images").is_dir():
        return sorted((DAVIS / "images").glob("*.jpg"))[:limit], DAVIS / "masks"
    return sorted((ROOT / "samples").glob("*.jpg"))[:limit], None


class MemorySampler:
    """Peak memory of all processes of one Chromium profile (Linux /proc), two ways:
    the sum of RSS (what earlier runs reported: shared pages such as Chromium's own code
    count once per process) and the sum of PSS (shared pages split between the
    processes that map them: the memory the profile really holds).

    PSS needs smaps_rollup, which walks each process's page tables: ~40 ms of CPU per
    sample of a profile holding a model, i.e. ~15 % of a core at 5 samples a second,
    taken from the very runs being timed on 2 cores (probe, 2026-12-06). So the sampler
    polls the cheap RSS (statm) and reads PSS at a new RSS high and otherwise once a
    second (~4 % of a core): PSS also rises while RSS does not, when a process exits and
    the pages it shared count whole in the others. Every PSS reading counts for the peak."""

    PSS_STEP_KB = 16 * 1024  # a new RSS high by this much triggers a PSS reading
    PSS_EVERY_S = 1.0

    def __init__(self, marker: str, interval: float = 0.2) -> None:
        self.marker, self.interval = marker, interval
        self.peak_kb = self.peak_pss_kb = 0
        self._pss_read_at_kb = 0
        self._matches: dict[str, bool] = {}  # pid -> is one of the profile's processes
        self._page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[str]:
        pids = set(filter(str.isdigit, os.listdir("/proc")))
        self._matches = {pid: hit for pid, hit in self._matches.items() if pid in pids}
        for pid in pids - self._matches.keys():
            try:
                self._matches[pid] = self.marker in Path(f"/proc/{pid}/cmdline").read_text(errors="ignore")
            except OSError:
                continue
        return [pid for pid, hit in self._matches.items() if hit]

    def _rss_kb(self) -> int:
        total = 0
        for pid in self._pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page_kb
            except (OSError, IndexError):
                continue
        return total

    def _sample(self) -> tuple[int, int]:
        rss = pss = 0
        for pid in self._pids():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            except OSError:
                continue
        return rss, pss

    def sample_mb(self) -> float:
        """The profile's RSS sum now, MB."""
        return round(self._sample()[0] / 1024, 1)

    def _pss_kb(self) -> int:
        pss = self._sample()[1]
        self.peak_pss_kb = max(self.peak_pss_kb, pss)
        return pss

    def pss_mb(self) -> float:
        """The profile's PSS sum now, MB."""
        return round(self._pss_kb() / 1024, 1)

    def reset(self) -> None:
        """Start a new peak (per photo)."""
        self.peak_kb = self.peak_pss_kb = self._pss_read_at_kb = 0

    def _run(self) -> None:
        last_pss = 0.0
        while not self._stop.wait(self.interval):
            rss = self._rss_kb()
            self.peak_kb = max(self.peak_kb, rss)
            if (rss >= self._pss_read_at_kb + self.PSS_STEP_KB
                    or time.monotonic() - last_pss >= self.PSS_EVERY_S):
                self._pss_read_at_kb = max(self._pss_read_at_kb, rss)
                self._pss_kb()
                last_pss = time.monotonic()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def restarted_engine(browser: ExtensionBrowser, src: str, mode: str, backend: str) -> Any:
    """One job after closing the offscreen document: the engine starts again as after a
    browser restart (its snapshot and the models already stored)."""
    if not browser.close_engine():
        raise RuntimeError("could not close the engine (was it running?)")
    outcome = browser.remove(src, mode, backend=backend)
    if outcome.state != "done":
        raise RuntimeError(f"after a restart: {outcome.error}")
    return outcome


def relaunched_browser(browser: ExtensionBrowser, src: str, mode: str, backend: str) -> Any:
    """One job after quitting Chromium and starting it again on the same profile: a
    person's browser restart (the extension's snapshot, stored models and preload hint
    kept; V8 compiles the WASM again, which an engine restart in a running browser
    does not)."""
    browser.relaunch()
    outcome = browser.remove(src, mode, backend=backend)
    if outcome.state != "done":
        raise RuntimeError(f"after a browser restart: {outcome.error}")
    return outcome


# A person reading the context menu before choosing "Remove background".
MENU_READ_S = 1.0


def menu_after_restart(browser: ExtensionBrowser, image_url: str, mode: str, backend: str) -> Any:
    """A browser restart, then what a person does: a page showing the photo, a right-click
    on it, MENU_READ_S reading the menu, "Remove background" (the mode and backend of the
    extension's settings, written before the restart: an extension page opened after it
    would start the engine itself). wall_s counts from the menu choice."""
    import tempfile

    browser.set_settings(mode=mode, backend=backend)
    browser.relaunch()
    with tempfile.TemporaryDirectory(prefix="cutout-menu-") as folder:
        (Path(folder) / "index.html").write_text(
            f'<!doctype html><img id="photo" src="{image_url}">')
        with StaticServer(Path(folder)) as pages:
            page = pages.url("index.html")
            browser.driver.get(page)
            browser.driver.execute_async_script(
                "const [img, done] = [document.getElementById('photo'), arguments[0]];"
                "if (img.complete) done(); else img.onload = img.onerror = () => done();")
            browser.right_click("photo")
            time.sleep(MENU_READ_S)
            outcome = browser.menu_job(page)
    if outcome.state != "done":
        raise RuntimeError(f"from the menu after a browser restart: {outcome.error}")
    return outcome


def released_memory(browser: ExtensionBrowser, memory: MemorySampler,
                    settle_s: float = 3.0) -> float:
    """The profile's PSS after the options page's "Release models from memory" (the
    message it sends): what an idle engine holds again after the idle release."""
    import time

    reply = browser.send({"target": "worker", "type": "release-models", "data": {}})
    if not isinstance(reply, dict) or not reply.get("workerEnded"):
        raise RuntimeError(f"release-models did not end the inference worker: {reply}")
    time.sleep(settle_s)  # the worker's heap is freed when its thread is torn down
    return memory.pss_mb()


def run(extension_dir: Path, models_dir: Path, limit: int = 20, mode: str = "fast",
        backend: str = "wasm") -> BenchReport:
    images, masks = pick_images(limit)
    if not images:
        raise FileNotFoundError("no images to benchmark")
    options = pipeline_options(get_mode(mode))
    # The native row runs the very graph the browser runs on this backend.
    model_path = models_dir / f"{get_mode(mode).model_on('webgpu' if backend == 'webgpu' else 'wasm')}.onnx"
    native = {row["image"]: row for row in time_native(images, model_path, **options)}
    session = get_session(model_path)
    rows: list[ImageRow] = []
    with StaticServer(images[0].parent) as server, StaticServer(models_dir, ModelHostHandler) as host, \
            ExtensionBrowser(extension_dir, browser_args(backend)) as browser, \
            MemorySampler(browser.profile) as rss:
        browser.set_settings(modelHost=host.url(), **webgpu_settings(backend))
        pss_before = rss.pss_mb()
        # Cold start: engine boot (Pyodide, wheel) + model load + first inference.
        cold = browser.remove(server.url(images[0].name), mode, backend=backend)
        if cold.state != "done":
            raise RuntimeError(f"{images[0].name}: {cold.error}")
        rss_first = rss.sample_mb()
        for path in images:
            outcome = browser.remove(server.url(path.name), mode, backend=backend)
            if outcome.state != "done":
                raise RuntimeError(f"{path.name}: {outcome.error}")
            from io import BytesIO

            from PIL import Image

            alpha = np.asarray(Image.open(BytesIO(outcome.png)))[..., 3]
            ref = predict_alpha(session, load_rgba(path), **options)
            n = native[path.name]
            t = outcome.result["timings_ms"]
            row = ImageRow(path.name, n["width"], n["height"], round(n["seconds"], 4),
                           round(n["infer_s"], 4), t["total"] / 1000, t["inference"] / 1000,
                           round(outcome.wall_s, 3), round(metrics.iou(alpha, ref), 5),
                           page_stall_ms=round(outcome.page_stall_ms, 1))
            if masks is not None:
                gt = np.asarray(Image.open(masks / f"{path.stem}.png").convert("L"))
                row.iou = round(metrics.iou(alpha, gt), 5)
                row.mae = round(metrics.mae(alpha, gt), 5)
                row.boundary_f = round(metrics.boundary_f(alpha, gt), 5)
            rows.append(row)
        rss_last, pss_last = rss.sample_mb(), rss.pss_mb()
        pss_released = released_memory(browser, rss)
        restart = restarted_engine(browser, server.url(images[0].name), mode, backend)
        relaunched = relaunched_browser(browser, server.url(images[0].name), mode, backend)
        from_menu = menu_after_restart(browser, server.url(images[0].name), mode, backend)
        backend, model = outcome.result["backend"], outcome.result["model"]
    ratios = [r.browser_s / r.native_s for r in rows if r.native_s > 0]
    return BenchReport(
        date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        machine=f"{os.cpu_count()} cores", mode=mode, model=model, backend=backend,
        images=len(rows), cold_start_s=round(cold.wall_s, 3),
        median_native_s=round(statistics.median(r.native_s for r in rows), 4),
        median_browser_s=round(statistics.median(r.browser_s for r in rows), 4),
        median_ratio=round(statistics.median(ratios), 3),
        peak_browser_rss_mb=round(rss.peak_kb / 1024, 1),
        max_page_stall_ms=max(r.page_stall_ms for r in rows),
        rss_after_first_job_mb=rss_first, rss_after_last_job_mb=rss_last,
        peak_browser_pss_mb=round(rss.peak_pss_kb / 1024, 1), pss_before_first_job_mb=pss_before,
        pss_after_last_job_mb=pss_last, pss_after_release_mb=pss_released,
        restart_s=round(restart.wall_s, 3), cold_timings_ms=cold.result["timings_ms"],
        restart_timings_ms=restart.result["timings_ms"],
        browser_restart_s=round(relaunched.wall_s, 3),
        browser_restart_timings_ms=relaunched.result["timings_ms"],
        menu_after_restart_s=round(from_menu.wall_s, 3),
        menu_after_restart_timings_ms=from_menu.result["timings_ms"], rows=rows)


def write(report: BenchReport, out_dir: Path = RESULTS) -> tuple[Path, Path]:
    """Dated JSON and a plot of per-image times, native vs browser."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = report.date[:19].replace(":", "")
    stem = f"{stamp}-speed-{report.mode}"
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(asdict(report), indent=2) + "\n")

    fig, ax = plt.subplots(figsize=(max(6, len(report.rows) * 0.4), 4))
    x = np.arange(len(report.rows))
    ax.bar(x - 0.2, [r.native_s for r in report.rows], 0.4, label="native onnxruntime (CPU)")
    ax.bar(x + 0.2, [r.browser_s for r in report.rows], 0.4, label=f"extension ({report.backend})")
    ax.set_xticks(x, [r.image for r in report.rows], rotation=90, fontsize=7)
    ax.set_ylabel("seconds per image, end to end")
    ax.set_title(f"{report.model}, mode {report.mode}: browser/native median ×{report.median_ratio}")
    ax.legend()
    return json_path, _save_figure(fig, out_dir / f"{stem}.png")


def _save_figure(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary(report: BenchReport) -> str:
    lines = [f"{report.images} images, {report.model} on {report.backend}",
             f"cold start (boot + model + first image): {report.cold_start_s:.2f} s; "
             f"engine restarted: {report.restart_s:.2f} s; "
             f"browser restarted: {report.browser_restart_s:.2f} s; after it, from the menu "
             f"(right-click {MENU_READ_S:.0f} s before): {report.menu_after_restart_s:.2f} s",
             f"median per image: native {report.median_native_s:.3f} s, "
             f"browser {report.median_browser_s:.3f} s (×{report.median_ratio})",
             f"peak browser RSS: {report.peak_browser_rss_mb:.0f} MB; after the first job "
             f"{report.rss_after_first_job_mb:.0f} MB, after the last "
             f"{report.rss_after_last_job_mb:.0f} MB",
             f"PSS: before the first job {report.pss_before_first_job_mb:.0f} MB, peak "
             f"{report.peak_browser_pss_mb:.0f} MB, after the last job "
             f"{report.pss_after_last_job_mb:.0f} MB, after releasing the models "
             f"{report.pss_after_release_mb:.0f} MB",
             f"longest result-page stall during a job: {report.max_page_stall_ms:.0f} ms"]
    scored = [r for r in report.rows if r.iou is not None]
    if scored:
        lines.append(f"quality vs ground truth: IoU {statistics.mean(r.iou for r in scored):.3f}, "
                     f"boundary F {statistics.mean(r.boundary_f for r in scored):.3f}")
    lines.append(f"browser vs native agreement: min IoU {min(r.agreement_iou for r in report.rows):.4f}")
    return "\n".join(lines)


# Photo sizes of the scaling rows, megapixels (issue 11).
SCALING_MP = (0.25, 1, 4, 12, 24, 48)


@dataclass
class ScalingRow:
    mode: str
    megapixels: float
    width: int
    height: int
    wall_s: float  # the job as the result page saw it
    timings_ms: dict[str, float]  # the engine's stages: fetch, decode, inference, compose, …
    peak_pss_mb: float  # the profile's peak PSS during this job
    notes: list[str] = field(default_factory=list)


def scaling_photo(folder: Path, megapixels: float) -> Path:
    """A 4:3 JPEG of about `megapixels`, upscaled from a bundled sample (real image
    content: decode, model and compose see a photo, not a flat colour)."""
    from PIL import Image

    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    path = folder / f"scale-{megapixels:g}mp.jpg"
    if not path.exists():
        with Image.open(ROOT / "samples" / "coffee.jpg") as image:
            image.convert("RGB").resize((width, height), Image.Resampling.BICUBIC).save(
                path, quality=90)
    return path


def run_scaling(extension_dir: Path, mode: str, sizes: tuple[float, ...] = SCALING_MP,
                backend: str = "wasm") -> list[ScalingRow]:
    """Time and peak memory of one job per photo size in `mode`, warm (a first job on
    the smallest photo loads the model), one browser for the mode."""
    import tempfile

    rows: list[ScalingRow] = []
    with tempfile.TemporaryDirectory(prefix="cutout-scaling-") as tmp:
        folder = Path(tmp)
        photos = [scaling_photo(folder, mp) for mp in sizes]
        with StaticServer(folder) as server, \
                ExtensionBrowser(extension_dir, browser_args(backend)) as browser, \
                MemorySampler(browser.profile) as memory:
            browser.set_settings(**webgpu_settings(backend))
            warmup = browser.remove(server.url(photos[0].name), mode, backend=backend)
            if warmup.state != "done":
                raise RuntimeError(f"{photos[0].name}: {warmup.error}")
            for mp, photo in zip(sizes, photos):
                memory.reset()
                outcome = browser.remove(server.url(photo.name), mode, backend=backend,
                                         timeout=600)
                if outcome.state != "done":
                    raise RuntimeError(f"{photo.name}: {outcome.error}")
                result = outcome.result
                rows.append(ScalingRow(mode, mp, int(result["width"]), int(result["height"]),
                                       round(outcome.wall_s, 3),
                                       {k: round(v, 1) for k, v in result["timings_ms"].items()},
                                       round(memory.peak_pss_kb / 1024, 1),
                                       list(result.get("notes") or [])))
    return rows


def scaling_table(rows: list[ScalingRow]) -> str:
    lines = ["| mode | photo | wall s | decode s | inference s | compose s | peak PSS MB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r.timings_ms
        lines.append(f"| {r.mode} | {r.megapixels:g} MP ({r.width}x{r.height}) | {r.wall_s} | "
                     f"{t.get('decode', 0) / 1000:.2f} | {t.get('inference', 0) / 1000:.2f} | "
                     f"{t.get('compose', 0) / 1000:.2f} | {r.peak_pss_mb:.0f} |")
    return "\n".join(lines)


def write_scaling(rows: list[ScalingRow], out_dir: Path = RESULTS) -> tuple[Path, Path]:
    """Dated JSON and a plot: wall time and peak PSS against megapixels, per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    json_path = out_dir / f"{stamp}-scaling.json"
    json_path.write_text(json.dumps({"machine": f"{os.cpu_count()} cores",
                                     "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for mode in dict.fromkeys(r.mode for r in rows):
        mine = [r for r in rows if r.mode == mode]
        left.plot([r.megapixels for r in mine], [r.wall_s for r in mine], marker="o", label=mode)
        right.plot([r.megapixels for r in mine], [r.peak_pss_mb for r in mine], marker="o",
                   label=mode)
    left.set(xlabel="photo, megapixels", ylabel="seconds per job (warm)", xscale="log")
    right.set(xlabel="photo, megapixels", ylabel="peak PSS of the browser, MB", xscale="log")
    left.legend()
    return json_path, _save_figure(fig, out_dir / f"{stamp}-scaling.png")


# In the Refine view: listeners around the view's own (registered before and after it)
# time each real pointer sample: handled = the view's handler, painted = the event's
# time stamp to the end of the frame that painted it (a rAF queued after the view's).
REFINE_PROBE = r"""
const view = document.getElementById('view');
window.__probe = { handled: [], painted: [] };
let started = 0;
window.addEventListener('pointermove', () => { started = performance.now(); }, true);
view.addEventListener('pointermove', (event) => {
  if (!(event.buttons & 1)) return;
  window.__probe.handled.push(performance.now() - started);
  const stamp = event.timeStamp;
  requestAnimationFrame(() => window.__probe.painted.push(performance.now() - stamp));
});
"""


@dataclass
class RefineReport:
    """Refine on one photo: per zoom, a brush stroke's samples (event handled, and event
    to the end of the frame that painted it: goal <= 16 ms), and the box re-run."""

    width: int
    height: int
    strokes: dict[str, dict[str, float]]  # zoom -> {samples, handled_ms_median, painted_ms_median, …_p95}
    region_box: str = ""
    region_s: float = 0.0  # the box re-run, as the engine reports it
    region_wall_s: float = 0.0  # box drawn -> pasted, as the page sees it
    # Smart strokes (re-segmentation), each: the page's performance measures from the
    # stroke's pointerup (prepare / grabcut round trip / paste / total, ms), the area
    # around the stroke and the pixels GrabCut worked on. The first includes starting
    # the segmenter (OpenCV.js loaded and compiled) when Smart is switched on just before.
    smart_strokes: list[dict[str, Any]] = field(default_factory=list)


def run_refine(extension_dir: Path, megapixels: float = 24, samples: int = 60,
               box_side: int = 1000) -> RefineReport:
    import tempfile
    import time

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    with tempfile.TemporaryDirectory(prefix="cutout-refine-") as tmp:
        photo = scaling_photo(Path(tmp), megapixels)
        with StaticServer(Path(tmp)) as server, ExtensionBrowser(extension_dir) as browser:
            job = browser.start_job(server.url(photo.name), "fast")
            driver = browser.driver
            driver.switch_to.new_window("tab")
            driver.get(job["url"])
            deadline = time.monotonic() + 600
            while driver.execute_script("return document.body.dataset.state") != "done":
                if time.monotonic() > deadline:
                    raise TimeoutError("the job did not finish")
                time.sleep(0.2)
            result = json.loads(driver.execute_script("return document.body.dataset.result"))
            driver.find_element("id", "refine").click()
            while not driver.execute_script("return location.pathname.endsWith('/refine.html')"
                                            " && document.body.dataset.state === 'ready'"):
                if time.monotonic() > deadline:
                    raise TimeoutError("Refine did not open")
                time.sleep(0.2)
            driver.execute_script(REFINE_PROBE)
            strokes = {label: _timed_stroke(driver, key, samples)
                       for label, key in (("fit", "0"), ("100 %", "1"), ("400 %", "+"))}
            # The box tool, with the pointer: a box_side square at the centre (fit view).
            ActionChains(driver).send_keys("0").send_keys("b").perform()
            view = driver.execute_script(
                "const r = document.getElementById('view').getBoundingClientRect();"
                "return {left: r.left, top: r.top, k: r.width / arguments[0]};", result["width"])
            corner = [((result["width"] + sign * box_side) / 2, (result["height"] + sign * box_side) / 2)
                      for sign in (-1, 1)]
            css = [(round(view["left"] + x * view["k"]), round(view["top"] + y * view["k"]))
                   for x, y in corner]
            started = time.monotonic()
            drag = ActionBuilder(driver)
            drag.pointer_action.move_to_location(*css[0]).pointer_down()
            drag.pointer_action.move_to_location(*css[1]).pointer_up()
            drag.perform()
            while "done again" not in (message := driver.find_element("id", "message").text):
                if "could not" in message or time.monotonic() > deadline:
                    raise RuntimeError(f"the box re-run failed: {message}")
                time.sleep(0.05)
            wall = time.monotonic() - started
            seconds = float(message.split(", ")[-1].split(" s)")[0])
            smart = _timed_smart_strokes(driver, view, result["width"], result["height"])
    return RefineReport(result["width"], result["height"], strokes,
                        f"{box_side}x{box_side}", seconds, round(wall, 3), smart)


def _timed_smart_strokes(driver: Any, view: dict[str, float], width: int,
                         height: int) -> list[dict[str, Any]]:
    """Erase strokes with Smart on, in the fit view: a short one (a tenth of the photo's
    width) just after switching Smart on, two more short ones, then one across the whole
    photo (its area is the whole photo: the worst case)."""
    import time

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    ActionChains(driver).send_keys("0").send_keys("e").perform()
    if not driver.execute_script("return document.getElementById('smart').checked"):
        ActionChains(driver).send_keys("a").perform()

    def css(x: float, y: float) -> tuple[int, int]:
        return round(view["left"] + x * width * view["k"]), round(view["top"] + y * height * view["k"])

    out = []
    for label, x0, x1, y in (("short, first", 0.45, 0.55, 0.5), ("short", 0.45, 0.55, 0.35),
                             ("short", 0.45, 0.55, 0.65), ("whole width", 0.02, 0.98, 0.5)):
        driver.execute_script("performance.clearMeasures()")
        stroke = ActionBuilder(driver)
        stroke.pointer_action.move_to_location(*css(x0, y)).pointer_down()
        for i in range(1, 21):
            stroke.pointer_action.move_to_location(*css(x0 + (x1 - x0) * i / 20, y))
        stroke.pointer_action.pointer_up()
        stroke.perform()
        deadline = time.monotonic() + 120
        while driver.execute_script("return document.body.dataset.state") != "ready":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {label} Smart stroke did not finish")
            time.sleep(0.05)
        message = driver.find_element("id", "message").text
        measures = driver.execute_script(
            "return Object.fromEntries(performance.getEntriesByType('measure')"
            ".filter((m) => m.name.startsWith('resegment'))"
            ".map((m) => [m.name, {ms: m.duration, detail: m.detail}]))")
        if "resegment" not in measures:
            raise RuntimeError(f"the {label} Smart stroke did not re-segment: {message}")
        detail = measures["resegment"]["detail"]
        out.append({"stroke": label, "area_px": detail["area"], "worked_px": detail["worked"],
                    "total_ms": round(measures["resegment"]["ms"], 1),
                    **{f"{part}_ms": round(measures[f"resegment:{part}"]["ms"], 1)
                       for part in ("prepare", "grabcut", "paste")},
                    "grabcut_own_ms": round(detail["grabCutMs"], 1), "message": message})
    return out


def write_refine(report: RefineReport, out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    path = out_dir / f"{stamp}-refine.json"
    path.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", **asdict(report)},
                               indent=2) + "\n")
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _timed_stroke(driver: Any, zoom_key: str, samples: int) -> dict[str, float]:
    """One erase stroke of `samples` pointer moves across the visible middle of the
    Refine view after pressing `zoom_key` ("+" = 400 %: 100 % and two steps in)."""
    import time

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    keys = ["e", "1", "+", "+"] if zoom_key == "+" else ["e", zoom_key]
    ActionChains(driver).send_keys(*keys).perform()
    time.sleep(0.5)
    area = driver.execute_script(
        "const v = document.getElementById('view').getBoundingClientRect();"
        "const s = document.getElementById('stage').getBoundingClientRect();"
        "window.__probe.handled = []; window.__probe.painted = [];"
        "return {x0: Math.max(v.left, s.left) + 20, x1: Math.min(v.right, s.right) - 20,"
        "        y: (Math.max(v.top, s.top) + Math.min(v.bottom, s.bottom)) / 2};")
    stroke = ActionBuilder(driver)
    stroke.pointer_action.move_to_location(round(area["x0"]), round(area["y"])).pointer_down()
    for i in range(1, samples + 1):
        x = area["x0"] + (area["x1"] - area["x0"]) * i / samples
        stroke.pointer_action.move_to_location(round(x), round(area["y"]))
    stroke.pointer_action.pointer_up()
    stroke.perform()
    time.sleep(0.3)  # the last frames
    probe = driver.execute_script("return window.__probe")
    if not probe["painted"]:
        raise RuntimeError("no stroke sample was painted")
    return {"samples": len(probe["painted"]),
            "handled_ms_median": _percentile(probe["handled"], 0.5),
            "handled_ms_p95": _percentile(probe["handled"], 0.95),
            "painted_ms_median": _percentile(probe["painted"], 0.5),
            "painted_ms_p95": _percentile(probe["painted"], 0.95)}


def refine_table(report: RefineReport) -> str:
    lines = [f"Refine on {report.width}x{report.height} ({report.width * report.height / 1e6:.0f} MP):",
             "| zoom | event handled, median / p95 ms | event → painted frame, median / p95 ms |",
             "|---|---|---|"]
    for zoom, s in report.strokes.items():
        lines.append(f"| {zoom} | {s['handled_ms_median']} / {s['handled_ms_p95']} | "
                     f"{s['painted_ms_median']} / {s['painted_ms_p95']} |")
    lines.append(f"box re-run ({report.region_box}): {report.region_s:.2f} s in the engine, "
                 f"{report.region_wall_s:.2f} s from the box to the pasted result")
    lines += ["", "| Smart stroke | area MP | worked on MP | prepare ms | GrabCut ms (its own) "
              "| paste ms | pointerup → applied ms |", "|---|---|---|---|---|---|---|"]
    for s in report.smart_strokes:
        lines.append(f"| {s['stroke']} | {s['area_px'] / 1e6:.1f} | {s['worked_px'] / 1e6:.2f} | "
                     f"{s['prepare_ms']} | {s['grabcut_ms']} ({s['grabcut_own_ms']}) | "
                     f"{s['paste_ms']} | {s['total_ms']} |")
    return "\n".join(lines)


@dataclass
class PeerReport:
    """@imgly/background-removal 1.7.0's default (ISNet fp16 1024², WASM threads) on the
    same photos, in the same run (cutout.peer)."""

    name: str
    images: int
    cross_origin_isolated: bool
    cold_start_s: float  # first photo: model download from 127.0.0.1 + session + inference
    median_warm_s: float  # removeBackground() per photo afterwards
    peak_browser_rss_mb: float
    peak_browser_pss_mb: float = 0.0
    restart_s: float = 0.0  # the page reloaded, one photo: model from the HTTP cache
    iou: float | None = None
    boundary_f: float | None = None
    browser_restart_s: float = 0.0  # Chromium restarted on its profile, the page, one photo


def run_peer(limit: int) -> PeerReport:
    from PIL import Image

    from . import peer
    from .headless.chromium import PlainBrowser

    images, masks = pick_images(limit)
    site = peer.stage()
    with PlainBrowser() as browser, MemorySampler(browser.profile) as rss:
        runs = peer.run(browser.driver, [images[0], *images], site, after_reload=images[0],
                        relaunch=browser.relaunch)
    cold, warm, restart, relaunched = runs[0], runs[1:-2], runs[-2], runs[-1]
    scores: list[tuple[float, float]] = []
    if masks is not None:
        from io import BytesIO

        for r in warm:
            alpha = np.asarray(Image.open(BytesIO(r.png)).convert("RGBA"))[..., 3]
            gt = np.asarray(Image.open(masks / f"{Path(r.image).stem}.png").convert("L"))
            scores.append((metrics.iou(alpha, gt), metrics.boundary_f(alpha, gt)))
    return PeerReport(
        f"{peer.PEER[0]}@{peer.PEER[1]} (ISNet fp16 1024², WASM)", len(warm), cold.isolated,
        round(cold.seconds, 3), round(statistics.median(r.seconds for r in warm), 3),
        round(rss.peak_kb / 1024, 1), round(rss.peak_pss_kb / 1024, 1), round(restart.seconds, 3),
        round(statistics.mean(s[0] for s in scores), 4) if scores else None,
        round(statistics.mean(s[1] for s in scores), 4) if scores else None,
        round(relaunched.seconds, 3))


def compare(reports: list[BenchReport], peer: PeerReport) -> dict[str, object]:
    """Cutout's modes against the peer, measured in one run: ratios for the goals of
    issue 11 (Balanced >= 3x faster at equal or better quality, Fast >= 7x, peak memory
    <= half, cold start >= 3x faster)."""
    rows = []
    for r in reports:
        scored = [x for x in r.rows if x.iou is not None]
        rows.append({
            "system": f"Cutout {r.mode} ({r.model}, {r.backend})",
            "warm_s": r.median_browser_s, "cold_s": r.cold_start_s,
            "peak_rss_mb": r.peak_browser_rss_mb,
            "iou": round(statistics.mean(x.iou for x in scored), 4) if scored else None,
            "boundary_f": round(statistics.mean(x.boundary_f for x in scored), 4) if scored else None,
            "speedup_vs_peer": round(peer.median_warm_s / r.median_browser_s, 2),
            "cold_speedup_vs_peer": round(peer.cold_start_s / r.cold_start_s, 2),
            "restart_s": r.restart_s,
            "restart_speedup_vs_peer": (round(peer.restart_s / r.restart_s, 2)
                                        if peer.restart_s and r.restart_s else None),
            "browser_restart_s": r.browser_restart_s or None,
            # the cold-start goal: browser start -> first cut-out with the model
            # cached, against the peer's cold start
            "browser_restart_vs_peer_cold": (round(peer.cold_start_s / r.browser_restart_s, 2)
                                             if r.browser_restart_s else None),
            # as a person meets the restart: from the menu choice, the right-click on the
            # image MENU_READ_S before it (its warm-up starting the engine)
            "menu_after_restart_s": r.menu_after_restart_s or None,
            "menu_after_restart_vs_peer_cold": (
                round(peer.cold_start_s / r.menu_after_restart_s, 2)
                if r.menu_after_restart_s else None),
            "browser_restart_speedup_vs_peer": (
                round(peer.browser_restart_s / r.browser_restart_s, 2)
                if peer.browser_restart_s and r.browser_restart_s else None),
            "rss_vs_peer": round(r.peak_browser_rss_mb / peer.peak_browser_rss_mb, 2),
            "peak_pss_mb": r.peak_browser_pss_mb,
            "pss_vs_peer": (round(r.peak_browser_pss_mb / peer.peak_browser_pss_mb, 2)
                            if peer.peak_browser_pss_mb else None),
            "pss_after_release_mb": r.pss_after_release_mb,
            "native_s": r.median_native_s, "browser_vs_native": r.median_ratio,
        })
    rows.append({"system": peer.name, "warm_s": peer.median_warm_s, "cold_s": peer.cold_start_s,
                 "restart_s": peer.restart_s, "browser_restart_s": peer.browser_restart_s or None,
                 "peak_rss_mb": peer.peak_browser_rss_mb, "peak_pss_mb": peer.peak_browser_pss_mb,
                 "iou": peer.iou,
                 "boundary_f": peer.boundary_f, "cross_origin_isolated": peer.cross_origin_isolated})
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores", "images": peer.images, "rows": rows,
            "peer": asdict(peer), "cutout": [asdict(r) for r in reports]}


def comparison_table(comparison: dict[str, object]) -> str:
    lines = ["| system | warm s / photo | cold s (first start) | restart s | browser restart s | … from the menu s | peak RSS MB (sum) | peak PSS MB | IoU | boundary F | × faster than peer (warm / cold / restart / browser restart) | browser restart vs the peer's cold start (job / from the menu) | PSS / peer |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in comparison["rows"]:  # type: ignore[union-attr]
        fmt = lambda v: "–" if v is None else f"{v}"  # noqa: E731
        speed = (f"{r['speedup_vs_peer']} / {r['cold_speedup_vs_peer']} / "
                 f"{fmt(r.get('restart_speedup_vs_peer'))} / "
                 f"{fmt(r.get('browser_restart_speedup_vs_peer'))}"
                 if "speedup_vs_peer" in r else "1 / 1 / 1 / 1")
        cold = (f"{fmt(r['browser_restart_vs_peer_cold'])} / "
                f"{fmt(r.get('menu_after_restart_vs_peer_cold'))}"
                if "browser_restart_vs_peer_cold" in r else "1")
        lines.append(f"| {r['system']} | {r['warm_s']} | {r['cold_s']} | {fmt(r.get('restart_s'))} | "
                     f"{fmt(r.get('browser_restart_s'))} | {fmt(r.get('menu_after_restart_s'))} | "
                     f"{r['peak_rss_mb']} | "
                     f"{fmt(r.get('peak_pss_mb'))} | {fmt(r['iou'])} | {fmt(r['boundary_f'])} | "
                     f"{speed} | {cold} | {fmt(r.get('pss_vs_peer', 1))} |")
    return "\n".join(lines)


def write_comparison(comparison: dict[str, object], out_dir: Path = RESULTS) -> tuple[Path, Path]:
    """Dated JSON and a bar plot of warm time per photo, Cutout's modes vs the peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{str(comparison['date'])[:19].replace(':', '')}-peer"
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(comparison, indent=2) + "\n")
    rows = comparison["rows"]  # type: ignore[assignment]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh([r["system"] for r in rows], [r["warm_s"] for r in rows])
    ax.set_xlabel("seconds per photo, warm (median), same run")
    ax.invert_yaxis()
    return json_path, _save_figure(fig, out_dir / f"{stem}.png")
