"""Fabric patterns of the synthetic renderer (stripes, checks, dots, chevron): where the ink
lies in the image, drawn with PIL as bands, zigzag bands or dots laid out in the canonical
garment frame and mapped through the view, so a pattern follows the garment's pose and zoom.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from lavis_syncmask.synthetic.geometry import SIZE, apply

STRIPE = (14.0, 5.0)  # (period, ink width) in canonical pixels
CHECK = (18.0, 6.0)
DOT = (16.0, 3.6)  # (lattice step, radius)
CHEVRON = (14.0, 5.0, 0.7)  # (period, ink width, slope)
_MARGIN = 24.0


def canonical_bounds(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """``(u_min, u_max, v_min, v_max)``: the canonical rectangle covering the image (+margin)."""
    corners = np.array([[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE]], dtype=np.float64)
    uv = apply(np.linalg.inv(matrix), corners)
    lo, hi = uv.min(axis=0) - _MARGIN, uv.max(axis=0) + _MARGIN
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def pattern_mask(pattern: str, phase: tuple[float, float], matrix: np.ndarray) -> np.ndarray:
    """``(256, 256)`` bool: pixels under the ink of ``pattern`` (everywhere in the image; the
    renderer keeps it on fabric only). ``phase`` shifts the pattern in canonical pixels."""
    canvas = Image.new("1", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(canvas)
    bounds = canonical_bounds(matrix)
    if pattern == "stripes":
        _bands(draw, matrix, bounds, phase[1], *STRIPE, across=False)
    elif pattern == "checks":
        _bands(draw, matrix, bounds, phase[1], *CHECK, across=False)
        _bands(draw, matrix, bounds, phase[0], *CHECK, across=True)
    elif pattern == "chevron":
        _chevrons(draw, matrix, bounds, phase)
    elif pattern == "dots":
        _dots(draw, matrix, bounds, phase)
    else:
        raise ValueError(
            f"no drawing for pattern {pattern!r}; patterns are stripes, checks, dots, chevron"
        )
    return np.asarray(canvas, dtype=bool)


def _bands(
    draw: ImageDraw.ImageDraw,
    matrix: np.ndarray,
    bounds: tuple[float, float, float, float],
    offset: float,
    period: float,
    width: float,
    *,
    across: bool,
) -> None:
    """Bands ``[k * period + offset, + width)`` of v (horizontal), or of u when ``across``."""
    u0, u1, v0, v1 = bounds
    lo, hi = (u0, u1) if across else (v0, v1)
    for k in range(math.floor((lo - offset) / period), math.ceil((hi - offset) / period) + 1):
        a = k * period + offset
        if across:
            corners = np.array([[a, v0], [a + width, v0], [a + width, v1], [a, v1]])
        else:
            corners = np.array([[u0, a], [u1, a], [u1, a + width], [u0, a + width]])
        draw.polygon(apply(matrix, corners).ravel().tolist(), fill=1)


def _chevrons(
    draw: ImageDraw.ImageDraw,
    matrix: np.ndarray,
    bounds: tuple[float, float, float, float],
    phase: tuple[float, float],
) -> None:
    period, width, slope = CHEVRON
    u0, u1, v0, v1 = bounds
    step = DOT[0] / 2  # the zigzag turns every half lattice step
    knots = (
        np.arange(math.floor((u0 + phase[0]) / step) * step, u1 + phase[0] + step, step) - phase[0]
    )
    zigzag = slope * np.abs(np.mod(knots + phase[0], 2 * step) - step)  # tri(u), 0..slope*step
    lift = slope * step
    for k in range(
        math.floor((v0 - phase[1]) / period) - 1, math.ceil((v1 - phase[1] + lift) / period) + 1
    ):
        top = k * period + phase[1] - zigzag
        edge = np.stack([knots, top], axis=1)
        lower = np.stack([knots[::-1], top[::-1] + width], axis=1)
        draw.polygon(apply(matrix, np.concatenate([edge, lower])).ravel().tolist(), fill=1)


def _dots(
    draw: ImageDraw.ImageDraw,
    matrix: np.ndarray,
    bounds: tuple[float, float, float, float],
    phase: tuple[float, float],
) -> None:
    step, radius = DOT
    u0, u1, v0, v1 = bounds
    rows = np.arange(math.floor((v0 - phase[1]) / step), math.ceil((v1 - phase[1]) / step) + 1)
    cols = np.arange(math.floor((u0 - phase[0]) / step) - 1, math.ceil((u1 - phase[0]) / step) + 1)
    r, c = np.meshgrid(rows, cols, indexing="ij")
    centres = np.stack(
        [c * step + step / 2 * (r % 2) + phase[0], r * step + phase[1]], axis=-1
    ).reshape(-1, 2)
    xy = apply(matrix, centres)
    # A canonical circle maps to an ellipse; with the small rotations used, its axis-aligned
    # box is a faithful footprint (the same one in every render, which is what matters).
    rx = radius * float(np.hypot(*matrix[:2, 0]))
    ry = radius * float(np.hypot(*matrix[:2, 1]))
    inside = (xy[:, 0] > -rx) & (xy[:, 0] < SIZE + rx) & (xy[:, 1] > -ry) & (xy[:, 1] < SIZE + ry)
    for x, y in xy[inside].tolist():
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=1)
