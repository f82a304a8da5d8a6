"""Mask quality metrics (pure numpy): IoU at a threshold, alpha MAE, boundary F-measure.

All functions take `pred` as alpha in 0..1 (float) or a bool mask, and `gt` as a mask
(bool, 0/1 or 0/255), both H x W at the same size (score at the original image size).
"""
from __future__ import annotations

import numpy as np


def _binary(a: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    if a.dtype == bool:
        return a
    if a.dtype == np.uint8:  # 0..255 masks / alphas
        return a >= round(threshold * 255)
    return a >= threshold


def _unit(a: np.ndarray) -> np.ndarray:
    if a.dtype == bool:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    return a.astype(np.float32)


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of `pred >= threshold` and the mask; 1.0 when both are empty."""
    p, g = _binary(pred, threshold), _binary(gt)
    union = np.count_nonzero(p | g)
    return 1.0 if union == 0 else np.count_nonzero(p & g) / union


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute difference of alpha (0..1) against the mask (0/1) — or another alpha."""
    return float(np.mean(np.abs(_unit(pred) - _unit(gt))))


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it (image borders count as inside)."""
    m = mask.astype(bool)
    pad = np.pad(m, 1, mode="edge")
    interior = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    return m & ~interior


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disc of `radius` pixels (shift-and-or; fine for small radii)."""
    if radius <= 0:
        return mask.copy()
    h, w = mask.shape
    pad = np.pad(mask, radius)
    out = np.zeros_like(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius:
                out |= pad[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
    return out


def boundary_f(pred: np.ndarray, gt: np.ndarray, tol: int = 2, threshold: float = 0.5) -> float:
    """F-measure of mask edges (DAVIS-style): precision = predicted edge pixels within `tol`
    px of a true edge, recall = true edge pixels within `tol` px of a predicted edge."""
    pb, gb = boundary(_binary(pred, threshold)), boundary(_binary(gt))
    n_p, n_g = np.count_nonzero(pb), np.count_nonzero(gb)
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = np.count_nonzero(pb & dilate(gb, tol)) / n_p
    recall = np.count_nonzero(gb & dilate(pb, tol)) / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def worst_mean(values: list[float] | np.ndarray, fraction: float = 0.05) -> float:
    """Mean of the worst `fraction` of the values (at least one)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    return float(v[: max(1, int(round(len(v) * fraction)))].mean()) if len(v) else float("nan")
