"""A tiny smoke run of `invoke bench` so the benchmark code cannot rot (no timing asserted)."""

from __future__ import annotations

import json


def test_bench_smoke_run(extension_dir, tmp_path):
    from cutout import bench
    from cutout.toolchain.build import MODELS_DIR

    report = bench.run(extension_dir, MODELS_DIR, limit=1, mode="fast", backend="wasm")
    assert report.images == 1 and report.model == "u2netp-wasm" and report.backend.startswith("wasm")
    row = report.rows[0]
    assert row.browser_s > 0 and row.native_s > 0 and row.agreement_iou >= 0.99
    assert report.rss_after_last_job_mb > 0 and report.max_page_stall_ms >= 0
    # PSS: the engine's memory is given back when the models are released
    # every start restores the snapshot `invoke build` bundled (the first one included)
    assert report.restart_s > 0 and report.restart_timings_ms["boot_snapshot"] == 2
    # Chromium restarted on its profile: the preload hint (localStorage) survived it
    assert report.browser_restart_s > 0 and report.browser_restart_timings_ms["boot_warmModelTaken"] > 0
    # and once more, a right-click on the photo in a page and the menu's "Remove background"
    # (the first job of the engine that right-click started: it reports the boot)
    assert report.menu_after_restart_s > 0 and report.menu_after_restart_timings_ms["boot_pyodide"] > 0
    assert report.cold_timings_ms["boot_snapshot"] == 2
    assert 0 < report.pss_after_release_mb < report.pss_after_last_job_mb <= report.peak_browser_pss_mb
    json_path, png_path = bench.write(report, tmp_path)
    assert json.loads(json_path.read_text())["rows"][0]["image"] == row.image
    assert png_path.stat().st_size > 0
    assert "longest result-page stall" in bench.summary(report) and "from the menu" in bench.summary(report)


def test_peer_smoke_run():
    """The peer (@imgly/background-removal 1.7.0, fetched pinned from npm) runs on one
    photo in a plain headless Chromium, cross-origin isolated, and is compared."""
    from cutout import bench

    peer = bench.run_peer(limit=1)
    assert peer.images == 1 and peer.cross_origin_isolated
    assert peer.median_warm_s > 0 and peer.peak_browser_rss_mb > 0 and peer.restart_s > 0
    assert peer.browser_restart_s > 0
    comparison = bench.compare([], peer)
    assert comparison["rows"][-1]["system"].startswith("@imgly/background-removal@1.7.0")
    assert "@imgly" in bench.comparison_table(comparison)


def test_scaling_smoke_run(extension_dir, tmp_path):
    """The scaling rows' code on two small sizes (the real run goes to 48 MP)."""
    from cutout import bench

    rows = bench.run_scaling(extension_dir, "fast", sizes=(0.25, 1))
    assert [round(r.width * r.height / 1e6, 2) for r in rows] == [0.25, 1.0]
    assert all(r.wall_s > 0 and r.peak_pss_mb > 0 and "inference" in r.timings_ms for r in rows)
    json_path, png_path = bench.write_scaling(rows, tmp_path)
    assert len(json.loads(json_path.read_text())["rows"]) == 2 and png_path.stat().st_size > 0
    assert "| fast | 1 MP" in bench.scaling_table(rows)


def test_refine_bench_smoke_run(extension_dir, tmp_path):
    """The Refine benchmark's code on a 1 MP photo (the real run uses 24 MP)."""
    from cutout import bench

    report = bench.run_refine(extension_dir, megapixels=1, samples=5, box_side=200)
    assert set(report.strokes) == {"fit", "100 %", "400 %"}
    assert all(s["painted_ms_median"] > 0 for s in report.strokes.values())
    assert report.region_s > 0 and report.region_wall_s >= report.region_s
    assert [s["stroke"] for s in report.smart_strokes][-1] == "whole width"
    assert all(s["grabcut_ms"] >= s["grabcut_own_ms"] > 0 for s in report.smart_strokes)
    assert json.loads(bench.write_refine(report, tmp_path).read_text())["width"] == report.width
    assert "box re-run (200x200)" in bench.refine_table(report)
    assert "| whole width | 1.0 |" in bench.refine_table(report)
