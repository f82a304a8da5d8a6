"""The extra-pass graphs (Quality's mirrored pass) against numpy, and their contract."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from cutout.toolchain.fuse import MIN_IR_VERSION
from cutout.toolchain.passes import FLIP_FILE, MIRROR_FILE, flip_model, graph_bytes, mirror_model


def logit_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    p = np.clip(np.stack([a, b]).astype(np.float64), 0.5, 254.5) / 255
    z = np.log(p / (1 - p)).mean(0)
    return np.floor((255 / (1 + np.exp(-z)) - 0.5) * 255 / 254 + 0.5).astype(int)


@pytest.fixture(scope="module")
def sessions() -> dict[str, ort.InferenceSession]:
    return {name: ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            for name, data in graph_bytes().items()}


@pytest.mark.parametrize("hw", [(1, 1), (5, 7), (1024, 1024), (3, 640)])
def test_flip_mirrors_left_to_right(sessions, hw):
    x = np.random.default_rng(0).integers(0, 256, (1, *hw, 4), dtype=np.uint8)
    (flipped,) = sessions[FLIP_FILE].run(None, {"x": x})
    assert np.array_equal(flipped, x[:, :, ::-1])


def test_mirror_averages_the_unflipped_second_pass(sessions):
    rng = np.random.default_rng(1)
    cutout = rng.integers(0, 256, (1, 40, 60, 4), dtype=np.uint8)
    mirrored = rng.integers(0, 256, (1, 40, 60), dtype=np.uint8)
    alpha, rgba = sessions[MIRROR_FILE].run(None, {"cutout": cutout, "mirrored": mirrored})
    expected = logit_mean(cutout[..., 3], mirrored[:, :, ::-1])
    assert np.abs(alpha.astype(int) - expected).max() <= 1  # float rounding at .5
    assert np.array_equal(rgba[..., 3], alpha)
    assert np.array_equal(rgba[..., :3], cutout[..., :3])


def test_a_symmetric_answer_is_kept_exactly(sessions):
    """Both passes agreeing (the mirrored pass mirrored) gives back the first pass."""
    cutout = np.random.default_rng(2).integers(0, 256, (1, 16, 16, 4), dtype=np.uint8)
    mirrored = np.ascontiguousarray(cutout[:, :, ::-1, 3])
    alpha, _ = sessions[MIRROR_FILE].run(None, {"cutout": cutout, "mirrored": mirrored})
    assert np.abs(alpha.astype(int) - cutout[..., 3]).max() <= 1


def test_sure_passes_stay_sure_and_a_disagreement_is_even(sessions):
    first = [255, 0, 255, 230, 255]
    second = [255, 0, 0, 255, 230]  # the mirrored pass, in the photo's orientation
    cutout = np.zeros((1, 1, 5, 4), np.uint8)
    cutout[0, 0, :, 3] = first
    mirrored = np.array([[second[::-1]]], np.uint8)
    (alpha,), _ = sessions[MIRROR_FILE].run(None, {"cutout": cutout, "mirrored": mirrored})
    # Both sure: kept; 255 against 0: even; 255 against 230 (either way round): surer
    # than their plain mean (243).
    assert list(alpha[0, :2]) == [255, 0] and alpha[0, 2] == 128
    assert alpha[0, 3] == alpha[0, 4] > 243


def test_graphs_are_valid_deterministic_and_small():
    for model in (flip_model(), mirror_model()):
        assert model.ir_version == MIN_IR_VERSION
        assert all(n.name.startswith("passes/") for n in model.graph.node)
    assert graph_bytes() == graph_bytes()
    assert all(len(data) < 4000 for data in graph_bytes().values())
