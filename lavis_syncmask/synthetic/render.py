"""Renderer of the synthetic catalogue: one 256 x 256 RGB view of a product, and the 16 x 16
patches each attribute visible in that view covers (the ground truth of the visibility sidecar,
benchmarks-and-data.md "The synthetic fashion set"; used for method.md section 5).

A view is drawn as a *label map* (PIL polygons on an 8-bit image, back to front: which part
owns each pixel; fabric under the pattern's ink gets an ink label), then painted through a
per-label palette over a background texture, all in PIL's C loops. ``omit=`` renders the neutral version of attributes: grey instead of
the colour, no pattern, no sleeves / neckline / print / pockets / back detail / closure, a hem
at a length no product has, no garment at all for ``category``. Pixels can then only change
where a label depends on the attribute (labels.py) or, for ``length``, where the hem-following
parts differ between the real and the neutral length; those pixels are what the sidecar lists,
so the ground truth holds by construction (and is tested).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from lavis_syncmask.synthetic.catalogue import N_TEXTURES, Product, stretch_matrix
from lavis_syncmask.synthetic.garments import NEUTRAL_LENGTH, draw_garment
from lavis_syncmask.synthetic.geometry import (
    SIZE,
    Part,
    ViewSpec,
    apply,
    linear_scale,
    view_matrix,
)
from lavis_syncmask.synthetic.labels import (
    BACKGROUND_LUT,
    INK_LUT,
    LABELS,
    attribute_label_table,
    palette_bytes,
)
from lavis_syncmask.synthetic.patterns import pattern_mask
from lavis_syncmask.synthetic.taxonomy import ATTRIBUTES, NEUTRAL_RGB

PATCH = 16
GRID = SIZE // PATCH
MAX_OFFSET = 16  # largest texture amplitude (grey levels)
_LABEL_TABLE = attribute_label_table(ATTRIBUTES).T.astype(np.uint8)  # (L, A)
#: (SIZE * SIZE,) int32: patch index (row-major 16 x 16 grid) of every pixel, times the label count.
_PATCH_BASE = (
    (((np.arange(SIZE)[:, None] // PATCH) * GRID + np.arange(SIZE)[None, :] // PATCH) * len(LABELS))
    .astype(np.int32)
    .ravel()
)


@dataclass(frozen=True)
class RenderedView:
    """``image``: ``(256, 256, 3)`` uint8 RGB. ``patches``: attribute -> sorted patch indices
    (0..255, row-major 16 x 16) its pixels cover, for the attributes visible in the view
    (empty when rendered with ``omit``)."""

    image: np.ndarray
    patches: dict[str, list[int]]


def render_view(product: Product, view: ViewSpec, omit: str | Collection[str] = ()) -> RenderedView:
    """Render ``view`` of ``product`` with the attributes in ``omit`` reverted to neutral.

    Example:
        >>> rendered = render_view(product, views[0])  # doctest: +SKIP
        >>> rendered.image.shape, sorted(rendered.patches)[:2]  # doctest: +SKIP
        ((256, 256, 3), ['category', 'colour'])
    """
    return _render(product, view, _check_omit(omit), with_patches=True)


def render_image(product: Product, view: ViewSpec, omit: str | Collection[str] = ()) -> np.ndarray:
    """Only the ``(256, 256, 3)`` uint8 image of :func:`render_view` (no patches: faster)."""
    return _render(product, view, _check_omit(omit), with_patches=False).image


def _render(
    product: Product, view: ViewSpec, omitted: frozenset[str], with_patches: bool
) -> RenderedView:
    attrs, rgb = _neutralised(product, omitted)
    matrix = view_matrix(view) @ stretch_matrix(product.stretch)
    parts = [] if "category" in omitted else _parts(product, attrs, view)
    labels = draw_labels(parts, matrix)
    if parts and "pattern" in attrs:
        labels = np.where(
            pattern_mask(attrs["pattern"], product.pattern_phase, matrix), INK_LUT[labels], labels
        )
    image = _paint(labels, rgb, view)
    patches = (
        _attribute_patches(product, view, labels, parts, matrix)
        if with_patches and not omitted
        else {}
    )
    return RenderedView(image, patches)


def _check_omit(omit: str | Collection[str]) -> frozenset[str]:
    omitted = frozenset([omit] if isinstance(omit, str) else omit)
    unknown = sorted(omitted - set(ATTRIBUTES))
    if unknown:
        raise ValueError(
            f"cannot omit unknown attribute(s) {unknown}; attributes are {list(ATTRIBUTES)}"
        )
    return omitted


def _neutralised(
    product: Product, omitted: frozenset[str]
) -> tuple[dict[str, str], tuple[int, int, int]]:
    attrs = dict(product.attributes)
    rgb = NEUTRAL_RGB if "colour" in omitted else product.rgb
    for name in omitted - {"category", "colour"}:
        if name == "length" and "length" in attrs:
            attrs["length"] = NEUTRAL_LENGTH
        else:
            attrs.pop(name, None)
    return attrs, rgb


def _parts(product: Product, attrs: Mapping[str, str], view: ViewSpec) -> list[Part]:
    return draw_garment(product.subcategory.kind, product.shape, attrs, view.face).parts


def draw_labels(parts: list[Part], matrix: np.ndarray) -> np.ndarray:
    """``(256, 256)`` uint8 label map of ``parts`` drawn back to front through ``matrix``."""
    canvas = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(canvas)
    scale = linear_scale(matrix)
    for part in parts:
        xy = apply(matrix, part.points).ravel().tolist()
        if part.shape == "poly":
            draw.polygon(xy, fill=part.label, outline=part.outline)
        else:
            draw.line(xy, fill=part.label, width=max(1, int(round(part.width * scale))))
    return np.asarray(canvas)


@lru_cache(maxsize=1)
def background_textures() -> np.ndarray:
    """``(N_TEXTURES, 256, 256)`` float32 in [-1, 1]: flat, gradients, cloudy, grain, linen,
    vignette, diagonal (fixed, independent of any seed)."""
    rng = np.random.default_rng(20240401)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    small = rng.uniform(-1, 1, size=(8, 8)).astype(np.float32)
    cloudy = np.asarray(Image.fromarray(small).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
    textures = [
        np.zeros((SIZE, SIZE), np.float32),
        2 * y - 1,
        2 * x - 1,
        np.clip(cloudy, -1, 1),
        np.clip(rng.normal(0, 0.5, size=(SIZE, SIZE)), -1, 1),
        0.5 * (np.sin(x * 180) + np.sin(y * 150)),
        1 - 2 * np.hypot(x - 0.5, y - 0.5) / np.hypot(0.5, 0.5),
        np.sin((x + y) * 40),
    ]
    assert len(textures) == N_TEXTURES
    return np.stack(textures).astype(np.float32)


@lru_cache(maxsize=128)
def _texture_offsets(texture: int, amplitude: int) -> bytes:
    """``MAX_OFFSET + round(amplitude * texture)`` per pixel, as the bytes of a PIL "P" image
    (cached: views share a few textures and integer amplitudes)."""
    if not 0 <= amplitude <= MAX_OFFSET:
        raise ValueError(
            f"texture_amplitude must be an integer in [0, {MAX_OFFSET}], got {amplitude}"
        )
    offsets = np.rint(background_textures()[texture] * amplitude).astype(np.int16) + MAX_OFFSET
    return offsets.astype(np.uint8).tobytes()


def _background(view: ViewSpec) -> Image.Image:
    steps = np.arange(-MAX_OFFSET, MAX_OFFSET + 1)
    ramp = np.clip(np.asarray(view.background)[None, :] + steps[:, None], 0, 255).astype(np.uint8)
    image = Image.frombytes(
        "P", (SIZE, SIZE), _texture_offsets(view.texture, int(view.texture_amplitude))
    )
    image.putpalette(ramp.tobytes())
    return image.convert("RGB")


def background_image(view: ViewSpec) -> np.ndarray:
    """``(256, 256, 3)`` uint8 backdrop of ``view``."""
    return np.asarray(_background(view))


def _paint(labels: np.ndarray, rgb: tuple[int, int, int], view: ViewSpec) -> np.ndarray:
    garment = Image.frombytes("P", (SIZE, SIZE), np.ascontiguousarray(labels).tobytes())
    garment.putpalette(palette_bytes(rgb))
    backdrop = Image.frombytes("L", (SIZE, SIZE), BACKGROUND_LUT[labels].tobytes())
    return np.asarray(Image.composite(_background(view), garment.convert("RGB"), backdrop))


def _attribute_patches(
    product: Product, view: ViewSpec, labels: np.ndarray, parts: list[Part], matrix: np.ndarray
) -> dict[str, list[int]]:
    present = np.bincount(_PATCH_BASE + labels.ravel(), minlength=GRID * GRID * len(LABELS))
    present = (present.reshape(GRID * GRID, len(LABELS)) > 0).astype(np.uint8)
    covered = (present @ _LABEL_TABLE) > 0  # (P, A): patches holding a label that depends on a
    out: dict[str, list[int]] = {}
    for a, name in enumerate(ATTRIBUTES):
        if name not in product.attributes:
            continue
        if name == "length":
            index = np.flatnonzero(_patch_any(_hem_change(product, view, parts, matrix)))
        else:
            index = np.flatnonzero(covered[:, a])
        if index.size:
            out[name] = index.tolist()
    return out


def _patch_any(mask: np.ndarray) -> np.ndarray:
    """``(256,)`` bool: patches holding at least one True pixel of a ``(256, 256)`` mask."""
    return mask.reshape(GRID, PATCH, GRID, PATCH).any(axis=(1, 3)).ravel()


def _hem_change(
    product: Product, view: ViewSpec, parts: list[Part], matrix: np.ndarray
) -> np.ndarray:
    """``(256, 256)`` bool: pixels where the hem-following parts differ between the product's
    length and the neutral one (everything else is drawn identically in both)."""
    neutral = dict(product.attributes, length=NEUTRAL_LENGTH)
    neutral_parts = _parts(product, neutral, view)
    actual = draw_labels([p for p in parts if p.hem], matrix)
    moved = draw_labels([p for p in neutral_parts if p.hem], matrix)
    return actual != moved
