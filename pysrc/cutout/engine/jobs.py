"""One background-removal job, from URL to PNG blob, reporting each stage."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import modes, strips, tiers
from ..protocol import CutoutError, Job, JobFailure, JobResult, Progress
from . import _js, errors
from .device import Device
from .models import ModelRegistry
from .imagesize import HEADER_BYTES, image_size, unsupported_format
from .naming import cutout_filename, unique_name


KEEP_RESULTS = 20  # finished results kept (their PNG blobs stay alive), newest last


def _feed_size(info: Any, mode: modes.Mode, width: int, height: int,
               model_side: int | None = None) -> tuple[int, int]:
    """(height, width) the model runs at for a width x height image: a fixed model's
    own size, or a dynamic one's from the mode (or a requested side)."""
    if not info.dynamic:
        return info.native_size
    return modes.model_input_size(width, height,
                                  model_side or mode.model_side or max(info.native_size),
                                  mode.keep_aspect)


class JobRunner:
    """Runs jobs as asyncio tasks. A job id is run once: asking again while it
    runs does nothing, asking after it finished re-sends its result. The
    worker may be stopped and the page reloaded at any moment, and both ask again."""

    def __init__(self, registry: ModelRegistry, device: Device) -> None:
        self.registry = registry
        self.device = device
        _js.watch_device_lost(self._device_lost)
        self.finished: dict[str, JobResult] = {}
        self.running: dict[str, asyncio.Task[Any]] = {}
        # One job at a time: a batch of twenty 12 MP photos started together would
        # otherwise decode and compose them all at once (GBs); the others wait their turn.
        self._turn = asyncio.Lock()
        self._zip_url = ""
        self._boot_reported = False
        self._region_url = ""  # the last region's PNG (one is kept, as the ZIP)
        registry.on_empty = self._end_inference_if_idle

    def submit(self, job: Job) -> str:
        if job.id in self.running:
            return "running"
        if job.id in self.finished:
            _js.post(self.finished[job.id].envelope().to_dict())
            return "finished"
        task = asyncio.ensure_future(self.run(job))
        self.running[job.id] = task
        task.add_done_callback(lambda _: self.running.pop(job.id, None))
        return "started"

    def _keep(self, result: JobResult) -> None:
        self.finished[result.job] = result
        while len(self.finished) > KEEP_RESULTS:
            oldest = next(iter(self.finished))
            evicted = self.finished.pop(oldest)
            _js.revoke_blob_url(evicted.url)
            _js.revoke_blob_url(evicted.original_url)

    async def run(self, job: Job) -> JobResult | JobFailure:
        try:
            if self._turn.locked():
                self._progress(job, "queued")
            async with self._turn:
                return await self._run(job)
        except CutoutError as e:
            failure = JobFailure(job.id, e.code, e.message)
        except Exception as e:  # a bug: still tell the user instead of hanging
            failure = JobFailure(job.id, "internal", f"Cutout failed unexpectedly: {e}")
        _js.post(failure.envelope().to_dict())
        return failure

    async def cut_region(self, job_id: str, box: dict[str, Any], model_host: str = "",
                         mode_name: str = "") -> dict[str, Any]:
        """Refine's region tool: the job's model (or `mode_name`'s: Portrait's matting
        for a person's hair) re-run on a box of its photo, at the model's full input
        size (more pixels on a hand, a glass, hair), composed at the box's own size.
        {url (PNG blob of the box), box (clamped), model, ms}."""
        result = self.finished.get(job_id)
        if result is None:
            raise CutoutError("region-gone", "The engine no longer holds this image (it was "
                              "restarted, or the image is older than the last 20). Open the "
                              "image again to re-run a part of it.")
        x0, y0 = max(0, int(box["x"])), max(0, int(box["y"]))
        x1 = min(result.width, int(box["x"]) + int(box["w"]))
        y1 = min(result.height, int(box["y"]) + int(box["h"]))
        width, height = x1 - x0, y1 - y0
        if width < 16 or height < 16:
            raise CutoutError("region-small", "Draw a larger box: at least 16 × 16 pixels.")
        if width * height > modes.MAX_REGION_PIXELS:
            raise CutoutError("region-large", "Draw a smaller box: the point is more pixels "
                              "on a part, and this one is most of the photo.")
        try:
            mode = modes.get_mode(mode_name or result.mode)
        except ValueError as e:
            raise CutoutError("bad-mode", str(e)) from None
        job = Job(f"{job_id}:region", result.original_url, mode.name, model_host)
        async with self._turn:
            started = _js.now_ms()
            crop = await _js.decode_region(await _js.url_blob(result.original_url),
                                           x0, y0, width, height)
            pixels = _js.rgba_pixels(crop)
            info = await self.registry.info(mode.model)
            feed_h, feed_w = _feed_size(info, mode, width, height)
            feed = await self._resize(pixels, width, height, feed_w, feed_h)
            plan, _ = await self.device.plan("auto")
            model, mask, _, _ = await self._infer(job, mode, plan, feed, feed_w, feed_h, {}, [])
            png = await self._compose(crop, mask, feed_w, feed_h)
            crop.close()
        if self._region_url:
            _js.revoke_blob_url(self._region_url)
        self._region_url = _js.blob_url(png)
        return {"url": self._region_url, "box": {"x": x0, "y": y0, "w": width, "h": height},
                "model": model.info.id, "ms": round(_js.now_ms() - started)}

    async def release_models(self) -> dict[str, Any]:
        """Release every model session and end the inference worker (its WASM heap
        cannot shrink otherwise), after the running job if there is one; the next job
        starts a new worker (~0.3 s) and loads its model again."""
        async with self._turn:
            released = self.registry.release_all()
            ended = _js.end_inference() if self.registry.empty else False
        return {"released": released, "workerEnded": ended}

    async def _end_inference_if_idle(self) -> None:
        """The reaper released the last idle session: end the worker too, unless a job
        is on its way (it would load a model into it again at once)."""
        if not self._turn.locked() and not self.running and self.registry.empty:
            _js.end_inference()

    async def zip_results(self, ids: list[str]) -> dict[str, Any]:
        """One ZIP (stored: PNGs are compressed already) of the finished cut-outs of `ids`,
        each as refined in the Refine view where it was; ids without a result are named
        in "missing". {url (blob), name, count, missing}."""
        import io
        import zipfile

        buffer, names, missing = io.BytesIO(), set(), []
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for job_id in ids:
                result = self.finished.get(job_id)
                if result is None:
                    missing.append(job_id)
                    continue
                png = await _js.refined_png(job_id) or await _js.url_bytes(result.url)
                archive.writestr(unique_name(result.filename, names), png)
        blob = _js.blob_from_bytes(buffer.getvalue(), "application/zip")
        if self._zip_url:  # one archive at a time is kept
            _js.revoke_blob_url(self._zip_url)
        self._zip_url = _js.blob_url(blob)
        return {"url": self._zip_url, "name": "cutouts.zip",
                "count": len(ids) - len(missing), "missing": missing}

    def _progress(self, job: Job, stage: str, detail: str = "") -> None:
        _js.post(Progress(job.id, stage, detail).envelope().to_dict())

    def _expected_run(self, mode: str, backend: str) -> str:
        """What the model run should take here, from this device's own runs ("about
        3.7 s on this device"; Balanced on a CPU is seconds), or "" before any run."""
        found = self.device.history.estimate_ms(mode, backend)
        if found is None:
            return ""
        seconds = found[0] / 1000
        shown = f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"
        return f"about {shown} s on this device"

    async def _run(self, job: Job) -> JobResult:
        name = job.mode if job.mode not in ("", modes.AUTO_MODE) else await self.device.default_mode()
        try:
            mode = modes.get_mode(name)
        except ValueError as e:
            raise CutoutError("bad-mode", str(e)) from None
        try:
            plan, fallback = await self.device.plan(job.backend or "auto")
        except ValueError as e:
            raise CutoutError("bad-backend", str(e)) from None
        timings: dict[str, float] = {}
        notes: list[str] = [fallback] if fallback else []
        t0 = _js.now_ms()
        if plan[0] == tiers.WASM:  # WebGPU's failures have their own path (_infer)
            self.registry.load_early(mode.model_on(tiers.WASM), tiers.WASM)

        self._progress(job, "fetching")
        blob, content_type = await self._fetch(job.src, notes, job.fetch_timeout_ms)
        t1 = _js.now_ms()
        timings["fetch"] = t1 - t0

        self._progress(job, "decoding", content_type)
        full = await self._decode(blob, content_type)
        try:
            width, height = int(full.width), int(full.height)
            if width * height > modes.MAX_PIXELS:
                raise errors.too_large(width, height, modes.MAX_PIXELS)
            if content_type.startswith("image/gif"):
                notes.append("Animated images: the first frame was used.")
            work_w, work_h = modes.work_size(width, height, mode.max_side)
            if (work_w, work_h) != (width, height):
                notes.append(f"Processed at {work_w}x{work_h}; the cut-out is full size.")
                work = await _js.decode(blob, work_w, work_h)
            else:
                work = full
            pixels = _js.rgba_pixels(work)
            if work is not full:
                work.close()
            info = await self.registry.info(mode.model)
            feed_h, feed_w = _feed_size(info, mode, work_w, work_h, job.model_side)
            if info.dynamic:
                notes.append(f"Model input {feed_w}x{feed_h}.")
            # The model graphs cannot antialias on WebGPU: the resize graph (WASM)
            # shrinks the photo to the model's input first, as natively.
            feed = await self._resize(pixels, work_w, work_h, feed_w, feed_h)
            t2 = _js.now_ms()
            timings["decode"] = t2 - t1

            model, mask, _, gave_up = await self._infer(job, mode, plan, feed, feed_w,
                                                        feed_h, timings, notes)
            del pixels, feed  # the compose reads the photo from a canvas, strip by strip
            if gave_up:
                fallback = gave_up
                notes.append(gave_up)
            t4 = _js.now_ms()
            used = tiers.WEBGPU if model.backend.startswith(tiers.WEBGPU) else tiers.WASM
            self.device.record(mode.name, used, timings["inference"])
            backend_label = self.device.label(used, model.backend)

            self._progress(job, "composing")
            await _js.next_task()
            png = await self._compose(full, mask, feed_w, feed_h, job)
            timings["compose"] = _js.now_ms() - t4
        finally:
            full.close()

        timings["total"] = _js.now_ms() - t0
        if not self._boot_reported:  # the first job after a start: where the start-up went
            self._boot_reported = True
            timings.update({f"boot_{k}": v for k, v in _js.boot_timings().items()},
                           boot_job_start=t0)
        url = _js.blob_url(png)
        result = JobResult(job.id, url, cutout_filename(job.src), width, height,
                           int(png.size), model.info.id, backend_label,
                           {k: round(v, 1) for k, v in timings.items()}, tuple(notes),
                           _js.blob_url(blob), mode.name, fallback)
        self._keep(result)
        _js.post(result.envelope().to_dict())
        return result

    async def _fetch(self, src: str, notes: list[str] | None = None,
                     timeout_ms: float | None = None) -> tuple[Any, str]:
        refused = errors.unsupported_src(src)
        if refused:
            raise refused
        if src.startswith("upload:"):
            blob = await _js.read_upload(src.removeprefix("upload:").split("/", 1)[0])
            if blob is None:
                raise CutoutError("upload-missing", "The image you opened is no longer stored "
                                  "(Cutout keeps the 20 most recent). Open it again.")
            return blob, str(blob.type or "")
        limit = timeout_ms or modes.FETCH_TIMEOUT_MS
        try:
            response = await _js.fetch_image(src, limit, modes.MAX_DOWNLOAD_BYTES)
        except _js.JsError as e:
            text = str(e)
            if "too-large:" in text:
                received = int(text.rsplit("too-large:", 1)[1].strip().split()[0])
                raise errors.download_too_large(received, modes.MAX_DOWNLOAD_BYTES) from None
            if text.rstrip().endswith("timeout"):
                raise errors.too_slow(limit / 1000) from None
            raise errors.network_error(text.split("network:", 1)[-1].strip()) from None
        if not response.ok:
            raise errors.http_error(int(response.status), str(response.statusText))
        blob = response.blob
        content_type = str(blob.type or response.contentType or "")
        if content_type and not content_type.startswith("image/") \
                and content_type not in ("application/octet-stream", "binary/octet-stream"):
            raise errors.not_an_image(content_type)
        if response.redirected and notes is not None:
            notes.append(f"Downloaded from {response.url} (redirected).")
        return blob, content_type

    async def _decode(self, blob: Any, content_type: str) -> Any:
        if int(blob.size) == 0:
            raise errors.undecodable(content_type)
        head = await _js.blob_head(blob, HEADER_BYTES)
        unsupported = unsupported_format(head)
        if unsupported:
            raise errors.unsupported_format(unsupported)
        size = image_size(head)
        if size and size[0] * size[1] > modes.MAX_PIXELS:  # refuse before decoding a bomb
            raise errors.too_large(size[0], size[1], modes.MAX_PIXELS)
        try:
            return await _js.decode(blob)
        except _js.JsError:
            raise errors.undecodable(content_type) from None

    async def _infer(self, job: Job, mode: modes.Mode, plan: list[str], feed: Any, width: int,
                     height: int, timings: dict[str, float],
                     notes: list[str]) -> tuple[Any, Any, Any, str]:
        """Run on the first backend of `plan` that works: (model, alpha, cutout RGBA, why
        WebGPU was given up, or ""). A WebGPU failure of any kind (session creation, the run, a
        lost device, no answer in time) re-runs the job on WASM; WASM errors are final."""
        fallback = ""
        for backend in plan:
            start = _js.now_ms()
            try:
                model, mask, cutout, run_start = await self._infer_on(
                    job, mode, backend, feed, width, height, notes)
            except (_js.JsError, TimeoutError) as e:
                if backend == tiers.WASM:
                    raise
                reason = (f"no answer within {self._webgpu_timeout(job) / 1000:.0f} s"
                          if isinstance(e, TimeoutError) else _short(str(e)))
                self.device.webgpu_failed(reason)
                self.registry.drop(tiers.WEBGPU)
                timings["webgpu_failed"] = _js.now_ms() - start
                fallback = f"WebGPU failed ({reason}); ran on the CPU (WebAssembly) instead."
                continue
            timings["model_load"] = run_start - start
            timings["inference"] = _js.now_ms() - run_start
            return model, mask, cutout, fallback
        raise CutoutError("internal", "No backend could run the model.")  # plan ends with WASM

    def _webgpu_timeout(self, job: Job) -> float:
        return job.webgpu_timeout_ms or tiers.WEBGPU_RUN_TIMEOUT_MS

    async def _infer_on(self, job: Job, mode: modes.Mode, backend: str, feed: Any,
                        width: int, height: int,
                        notes: list[str]) -> tuple[Any, Any, Any, float]:
        """Load `mode`'s model on `backend` and run it on the model-sized `feed`; returns
        (model, alpha, cutout RGBA, time the run started). WebGPU runs are bounded by a timeout."""
        model_id = mode.model_on(backend)
        self._progress(job, "loading-model", f"{model_id} ({backend})")
        model = await self.registry.get(
            model_id, backend, job.model_host,
            lambda done, total: self._progress(
                job, "downloading-model" if done < total else "loading-model",
                f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if done < total else model_id),
            notes)
        self._progress(job, "inferring", self._expected_run(mode.name, backend))
        # Session creation and inference hold this thread for seconds: let the
        # progress message leave before they start, or the page shows a stale stage.
        await _js.next_task()
        started = _js.now_ms()
        feeds = {"rgba": _js.uint8_tensor(feed, [1, height, width, 4])}
        # The file that runs decides (Balanced's WASM file is fixed at 1024², its WebGPU
        # file takes any size); a fixed graph resizes any feed to its own size inside.
        if model.info.dynamic:
            feeds["size"] = _js.int32_tensor([height, width])
        outputs = await self._run_model(job, model, backend, feeds, ["alpha", "cutout"])
        alpha, cutout = outputs.alpha.data, outputs.cutout.data
        if mode.mirror:
            # Test-time augmentation: the same model on the mirrored feed, averaged in.
            self._progress(job, "inferring", "second pass, mirrored")
            await _js.next_task()
            flipped = await _js.run_session(await self.registry.pass_session("flip.onnx"),
                                            {"x": feeds["rgba"]})
            feeds["rgba"] = _js.uint8_tensor(flipped.flipped.data, [1, height, width, 4])
            mirrored = await self._run_model(job, model, backend, feeds, ["alpha"])
            merged = await _js.run_session(await self.registry.pass_session("mirror.onnx"), {
                "cutout": _js.uint8_tensor(cutout, [1, height, width, 4]),
                "mirrored": _js.uint8_tensor(mirrored.alpha.data, [1, height, width])})
            alpha, cutout = merged.alpha.data, merged.rgba.data
        return model, alpha, cutout, started

    async def _run_model(self, job: Job, model: Any, backend: str, feeds: dict[str, Any],
                         fetch: list[str]) -> Any:
        """One run of a model session; WebGPU runs are bounded by a timeout."""
        run = _js.run_session(model.session, feeds, fetch)
        if backend == tiers.WEBGPU:
            return await _js.with_timeout(run, self._webgpu_timeout(job))
        return await run

    def _device_lost(self, message: Any) -> None:
        self.device.webgpu_failed(f"device lost: {message}")
        self.registry.drop(tiers.WEBGPU)

    async def _compose(self, photo: Any, mask: Any, mask_w: int, mask_h: int,
                       job: Job | None = None) -> Any:
        """The exported PNG: the model's mask onto the full-size photo (an ImageBitmap)
        through the compose graphs (edges that follow the photo, no halo of the old
        background), in strips of rows (cutout.strips) so that memory stays bounded
        at any size. The cut-out's rows replace the photo's in one canvas."""
        downscale, fields_graph, strip_graph = await self.registry.compose_sessions()
        width, height = int(photo.width), int(photo.height)
        low_h, low_w = strips.low_size(height, width, mask_h, mask_w)
        ctx = _js.photo_canvas(photo)
        parts = []
        for s in strips.downscale_strips(height, width, low_h):
            out = await _js.run_session(downscale, {
                "rgba": _js.uint8_tensor(_js.read_rows(ctx, s.src_first, s.src_stop),
                                         [1, s.src_stop - s.src_first, width, 4]),
                "rows": _js.int32_tensor(strips.downscale_rows(s, height, low_h, low_w))})
            parts.append(out.rgb_low.data)
        fields = (await _js.run_session(fields_graph, {
            "rgb_low": _js.float32_tensor(_js.joined_float32(parts), [1, low_h, 3, low_w]),
            "alpha": _js.uint8_tensor(mask, [1, mask_h, mask_w])})).fields
        planes = int(fields.dims[2])
        row = planes * low_w
        bands = strips.compose_strips(height, width, low_h)
        for i, s in enumerate(bands):
            out = await _js.run_session(strip_graph, {
                "rgba": _js.uint8_tensor(_js.read_rows(ctx, s.first, s.stop),
                                         [1, s.stop - s.first, width, 4]),
                "fields": _js.float32_tensor(
                    _js.float32_range(fields.data, s.src_first * row, s.src_stop * row),
                    [1, s.src_stop - s.src_first, planes, low_w]),
                "rows": _js.int32_tensor(strips.compose_rows(s, height, low_h))})
            _js.write_rows(ctx, out.cutout.data, s.first)
            if job is not None and len(bands) > 4:
                self._progress(job, "composing", f"{100 * (i + 1) // len(bands)} %")
        return await _js.canvas_png(ctx)

    async def _resize(self, pixels: Any, width: int, height: int,
                      to_w: int, to_h: int) -> Any:
        if (width, height) == (to_w, to_h):
            return pixels
        session = await self.registry.resize_session()
        outputs = await _js.run_session(session, {
            "rgba": _js.uint8_tensor(pixels, [1, height, width, 4]),
            "size": _js.int32_tensor([to_h, to_w])})
        return outputs.resized.data


def _short(message: str, limit: int = 200) -> str:
    """The first line of an onnxruntime / WebGPU error, bounded for a note."""
    line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return line if len(line) <= limit else line[:limit - 1] + "…"
