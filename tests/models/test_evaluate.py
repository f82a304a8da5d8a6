"""`invoke eval` scores the shipped models; it skips cleanly without the photos."""

from __future__ import annotations

import pytest

from cutout import evaluate


def test_skips_when_eval_set_absent(monkeypatch, tmp_path, built_models):
    from cutout.toolchain.models import DEFAULT_OUT

    monkeypatch.setattr(evaluate, "DAVIS", tmp_path / "missing")
    assert evaluate.run(DEFAULT_OUT) is None


@pytest.mark.skipif(not (evaluate.DAVIS / "images").is_dir(), reason="davis345 absent")
def test_scores_fast_mode_on_two_photos(built_models):
    from cutout.toolchain.models import DEFAULT_OUT

    ids = evaluate.image_ids(1)[:2]
    row = evaluate.score_mode("fast", DEFAULT_OUT, ids)
    assert row["images"] == 2 and row["model"] == "u2netp-wasm"  # WASM is the default backend
    assert 0.3 < row["iou_mean"] <= 1 and 0 <= row["mae"] < 0.2
    assert "| fast | u2netp-wasm |" in evaluate.table({"rows": [row]})
