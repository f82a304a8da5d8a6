"""Cutout's tasks. Each one is thin: the work is done by pysrc/cutout/toolchain."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Collection, Exit, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "pysrc"))  # tasks work before `pip install -e .` too

SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))


def expand_paths(spec: str) -> list[Path]:
    """Comma-separated paths and glob patterns, in order; a pattern matching nothing is kept
    as given so that it is reported as a missing file."""
    import glob

    paths: list[Path] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        matches = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
        paths += [Path(m) for m in matches] or [Path(part)]
    return paths


@task
def deps(c):
    """Install Chromium + driver (Debian) if missing and fetch the pinned npm packages."""
    from cutout.toolchain import system, vendor

    if system.ensure_chromium():
        print("installed chromium and chromium-driver")
    for tgz in vendor.fetch_all():
        print(f"verified {tgz.name}")


@task
def models(c, update=False, research=False):
    """Fetch, verify, convert and quantise the models; check them against models/manifest.json.

    :param update: write the built files' sizes and hashes into models/manifest.json
                   (after an intended change of a source or a conversion).
    :param research: also build the unshipped variants scored in docs/MODELS.md into
                     build/models-research.
    """
    from cutout.toolchain import models as m

    if research:
        for name, path in m.build_research(ROOT / "build" / "models-research").items():
            print(f"{name}: {path} {path.stat().st_size:,} B")
    entries = m.build_models()
    for e in entries:
        print(f"{e.id}: {e.file} {e.bytes:,} B sha256 {e.sha256[:12]}…")
    if update:
        m.write_manifest(entries)
    problems = m.check_manifest()
    if problems:
        raise Exit("\n".join([*problems, "the built models differ from models/manifest.json: "
                               "if that is intended, run `invoke models --update`"]), code=1)


@task(pre=[deps, models])
def build(c, model_host=None, remote_models=False):
    """Write the loadable unpacked extension to build/extension, every model bundled.

    :param remote_models: the slim flavour: bundle only the Fast model and download the
                          others once from the model host.
    :param model_host: where that flavour downloads them (default: http://127.0.0.1:8765/,
                       i.e. `invoke serve-models`).
    """
    from cutout.toolchain.build import DEFAULT_MODEL_HOST, build_extension
    from cutout.toolchain.snapshot import bundle_snapshot

    info = build_extension(model_host=model_host or DEFAULT_MODEL_HOST, remote=remote_models)
    try:  # the engine's first start restores it instead of starting Pyodide (~3 s less)
        snapshot = bundle_snapshot(info.out)
        print(f"bundled the engine's start-up snapshot ({snapshot.stat().st_size / 1e6:.1f} MB)")
    except Exception as e:  # noqa: BLE001 - the extension works without it, slower to start
        print(f"no start-up snapshot bundled ({e}); the first start will make one")
    print(f"built {info.out} ({info.files} files, {info.bytes / 1e6:.1f} MB)")


@task(pre=[build])
def remove(c, paths, out="out", mode=None, backend="auto"):
    """Remove the background of image files through the real extension in headless Chromium.

    The `cutout remove` command (pysrc/cutout/cli.py), with globs and commas expanded here.

    :param paths: image files: paths or glob patterns, comma-separated ("a.jpg,photos/*.png").
    :param out: folder for <stem>.png cut-outs and timings.json.
    :param mode: auto (default: the tier's), fast, balanced, quality or portrait.
    :param backend: auto (the tier's), webgpu or wasm. Headless Chromium here has WebGPU
                    only as SwiftShader (software, very slow): webgpu is for checks.
    """
    from cutout import cli

    code = cli.remove(expand_paths(paths), Path(out), mode or "auto", backend)
    if code:
        raise Exit(code=code)


@task(pre=[build])
def demo(c, out="out"):
    """Cut out the bundled sample photos through the extension; PNGs go to out/."""
    remove(c, ",".join(str(p) for p in SAMPLES), out=out)
    from cutout.modes import get_mode
    from cutout.native.pipeline import time_native
    from cutout.toolchain.build import MODELS_DIR

    # The file the extension ran above (Fast on WASM: no GPU in headless Chromium here).
    for row in time_native(SAMPLES, MODELS_DIR / f"{get_mode('fast').model_on('wasm')}.onnx"):
        print(f"native reference {row['image']}: {row['seconds']:.2f} s")


@task(pre=[build])
def bench(c, limit=20, mode=None, backend="wasm", peer=False, scaling=False, refine=False):
    """Benchmark the extension against native onnxruntime on the same model and images.

    :param limit: number of images (davis345 when present, else the samples).
    :param mode: processing mode(s), comma-separated (default: fast; with --peer every mode).
    :param backend: wasm (default), webgpu or auto, as for `invoke remove`.
    :param peer: also run @imgly/background-removal 1.7.0 (fetched from npm, benchmark
                 only) on the same photos in the same run, and compare.
    :param scaling: instead, time one job per photo size (0.25 to 48 MP) in each mode.
    :param refine: instead, time Refine on a 24 MP photo: brush strokes per zoom, a box re-run.
    """
    from cutout import bench as b
    from cutout.modes import MODES
    from cutout.toolchain.build import MODELS_DIR, OUT_DIR

    if refine:
        report = b.run_refine(OUT_DIR)
        print(b.refine_table(report))
        print("wrote {}".format(b.write_refine(report)))
        return
    chosen = mode.split(",") if mode else (list(MODES) if peer or scaling else ["fast"])
    if scaling:
        rows = [row for name in chosen for row in b.run_scaling(OUT_DIR, name, backend=backend)]
        print(b.scaling_table(rows))
        print("wrote {} and {}".format(*b.write_scaling(rows)))
        return
    reports = []
    for name in chosen:
        report = b.run(OUT_DIR, MODELS_DIR, limit=limit, mode=name, backend=backend)
        json_path, png_path = b.write(report)
        print(b.summary(report))
        print(f"wrote {json_path} and {png_path}")
        reports.append(report)
    if peer:
        comparison = b.compare(reports, b.run_peer(limit))
        print(b.comparison_table(comparison))
        print("wrote {} and {}".format(*b.write_comparison(comparison)))


@task(pre=[models])
def eval(c, every=3, research=False):  # noqa: A001 - the task is called `invoke eval`
    """Score the shipped models on ../shared/eval/davis345 (skips when absent); plot.

    :param every: score every Nth photo (3: 115 of 345).
    :param research: also score the research variants (bench/eval_models.py; needs
                     build/models-research from bench/models_research.py).
    """
    from cutout import evaluate
    from cutout.toolchain.build import MODELS_DIR

    report = evaluate.run(MODELS_DIR, every)
    if report is None:
        print(f"skipped: {evaluate.DAVIS} is absent")
        return
    path = evaluate.write(report)
    print(evaluate.table(report))
    research_json = sorted(evaluate.RESULTS.glob("*-models.json"))
    if research:
        c.run(f"{sys.executable} bench/eval_models.py --every {every}")
        research_json = sorted(evaluate.RESULTS.glob("*-models.json"))
    plot = evaluate.plot(report, research_json[-1] if research_json else None,
                         ROOT / "docs" / "models-quality.png")
    print(f"wrote {path} and {plot}")


@task
def test(c, k="", browser=True):
    """Run the test suite (unit, models, browser); builds the extension first.

    :param k: pytest -k expression.
    :param browser: also run the headless-Chromium tests (--no-browser: no Chromium
                    needed, and the extension is not built).
    """
    if browser:  # calling tasks directly skips their pre-tasks: run the chain
        for step in (deps, models, build):
            step(c)
    args = ["-q", "-rs"]
    if k:
        args += ["-k", k]
    if not browser:
        args += ["-m", "not browser"]
    import shlex

    c.run(shlex.join([sys.executable, "-m", "pytest", *args]), pty=False)


@task(pre=[build])
def screenshots(c, out="docs/screenshots"):
    """Capture the popup, a result, Refine, a batch and the options page from the real
    extension."""
    from cutout.headless.screenshots import take
    from cutout.toolchain.build import OUT_DIR

    for path in take(OUT_DIR, ROOT / "samples", ROOT / out):
        print(f"wrote {path}")


@task(pre=[models])
def serve_models(c, port=8765):
    """Serve build/models on 127.0.0.1 as the model host (the default of dev builds).

    :param port: must match the build's model host (default http://127.0.0.1:8765/).
    """
    from cutout.headless.servers import ModelHostHandler, StaticServer
    from cutout.toolchain.build import MODELS_DIR

    server = StaticServer(MODELS_DIR, ModelHostHandler, port=port)
    print(f"serving {MODELS_DIR} at {server.url()} (Ctrl+C to stop)")
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.close()


@task
def clean(c):
    """Delete build output (build/ keeps the download cache unless --all)."""
    import shutil

    for path in (ROOT / "build" / "extension", ROOT / "build" / "models", ROOT / "out"):
        shutil.rmtree(path, ignore_errors=True)


ns = Collection(deps, models, build, remove, demo, bench, eval, test, screenshots, serve_models,
                clean)
