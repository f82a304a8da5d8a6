"""Horizontal strips for the compose graphs: which rows each call reads and writes.

Composing a 48 MP photo in one onnxruntime call peaks at ~80 bytes per photo pixel
(3.8 GB: more than a WASM heap holds beside a model). The compose graphs
(toolchain/compose.py) therefore work in three steps, two of them in strips of
photo rows, so that memory is bounded by the strip, not the photo:

1. downscale: the photo, strip by strip, to K x the mask's size and then a K x K box
   (the low-resolution guide, a few MB whatever the photo's size);
2. fields: the guided-filter and colour fields at the mask's resolution, in one call;
3. strip: each strip of the photo with the fields' rows it needs: the cut-out's rows.

Both bilinear resizes are split exactly: a strip's output rows sample the source at
the positions of the whole image's resize (half-pixel centres), so the result does not
depend on where the strips fall. This module only plans (pure Python: the engine under
Pyodide and the native pipeline share it); the graphs compute the sample positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Photo -> mask resolution: bilinear to K x the mask's size, then a K x K box with
# stride K (toolchain.compose._downscale says why).
K = 4
# Photo pixels per strip. The strip graph peaks at ~80 B per pixel (~80 MB here);
# much smaller strips add per-call overhead (a message to the worker, a session run).
STRIP_PIXELS = 1_000_000


@dataclass(frozen=True)
class Strip:
    """Output rows [first, stop) of one call, from source rows [src_first, src_stop)."""

    first: int
    stop: int
    src_first: int
    src_stop: int


def low_size(photo_h: int, photo_w: int, mask_h: int, mask_w: int) -> tuple[int, int]:
    """(h, w) the fields are computed at: the mask's size, shrunk along a side where it
    is longer than the photo (a 1024 square mask over an 854x480 photo)."""
    return min(mask_h, photo_h), min(mask_w, photo_w)


def source_rows(first: int, stop: int, out_size: int, in_size: int) -> tuple[int, int]:
    """Source rows [a, b) that a bilinear half-pixel resize from `in_size` to `out_size`
    rows reads for output rows [first, stop); one row to spare on each side, because the
    graph computes the positions in float32."""

    def position(y: int) -> float:
        return min(max((y + 0.5) * in_size / out_size - 0.5, 0.0), in_size - 1.0)

    return (max(0, math.floor(position(first)) - 1),
            min(in_size, math.floor(position(stop - 1)) + 3))


def downscale_strips(photo_h: int, photo_w: int, low_h: int,
                     strip_pixels: int = STRIP_PIXELS) -> list[Strip]:
    """Step 1: rows of the low-resolution guide (0..low_h) per call, each with the
    photo rows it reads; about `strip_pixels` photo pixels per call."""
    rows = max(1, int(strip_pixels / photo_w * low_h / photo_h))
    strips = []
    for first in range(0, low_h, rows):
        stop = min(low_h, first + rows)
        a, b = source_rows(K * first, K * stop, K * low_h, photo_h)
        strips.append(Strip(first, stop, a, b))
    return strips


def compose_strips(photo_h: int, photo_w: int, low_h: int,
                   strip_pixels: int = STRIP_PIXELS) -> list[Strip]:
    """Step 3: photo rows per call, each with the rows of the fields (0..low_h) it reads."""
    rows = max(1, strip_pixels // photo_w)
    strips = []
    for first in range(0, photo_h, rows):
        stop = min(photo_h, first + rows)
        a, b = source_rows(first, stop, photo_h, low_h)
        strips.append(Strip(first, stop, a, b))
    return strips


def downscale_rows(s: Strip, photo_h: int, low_h: int, low_w: int) -> list[int]:
    """The downscale graph's `rows` input for strip `s` (toolchain.compose.downscale_model)."""
    return [s.first, s.stop, s.src_first, photo_h, low_h, low_w]


def compose_rows(s: Strip, photo_h: int, low_h: int) -> list[int]:
    """The strip graph's `rows` input for strip `s` (toolchain.compose.strip_model)."""
    return [s.first, s.src_first, photo_h, low_h]
