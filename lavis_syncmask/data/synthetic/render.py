"""Renderer of the synthetic catalogue: one 256x256 RGB view of a garment, with the 16x16
patches each visible attribute covers (benchmarks-and-data.md, "The synthetic fashion set").

How the ground truth stays true: a view is first drawn as an *owner map* in a 256x256 garment
frame (which layer owns each pixel: background, base colour, pattern, neckline, print,
closure, pockets, back detail; later layers cover earlier ones), then sampled into the image
by a nearest-neighbour zoom / shift. An attribute's pixels are the image pixels it owns, or,
for the attributes that change the silhouette (sleeve, length), the region they add to it;
``category`` is the whole garment. ``omit=`` renders the neutral version of an attribute
(grey colour, solid, no sleeves, neutral length, no layer, no garment), which by construction
changes only the pixels of that attribute, and changes all of them because background,
palette and special colours never coincide (taxonomy.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache

import numpy as np

from lavis_syncmask.data.synthetic.catalogue import Garment, ViewSpec
from lavis_syncmask.data.synthetic.taxonomy import (
    ATTRIBUTES,
    BOW,
    BUTTON,
    INK,
    LENGTH_BOTTOM,
    NECK_INNER,
    NEUTRAL,
    NEUTRAL_BOTTOM,
    PALETTE,
    POCKET_STITCH,
    SKIN,
    ZIP,
    ZIP_PULL,
    Shape,
)

SIZE = 256
PATCH = 16
BG, BASE, PATTERN, NECK, PRINT, PRINT_INK, POCKET, BACK, BACK_KNOT, CLOSURE = range(10)
#: Owner ids of the attributes drawn as layers.
LAYER_OWNERS: dict[str, tuple[int, ...]] = {
    "colour": (BASE,),
    "pattern": (PATTERN,),
    "neckline": (NECK,),
    "print": (PRINT, PRINT_INK),
    "pockets": (POCKET,),
    "closure": (CLOSURE,),
    "back_detail": (BACK, BACK_KNOT),
}
SLEEVE_LENGTH = {"short": 34, "elbow": 70, "long": 112}
#: Top edge and shoulder half-width of each silhouette in the garment frame.
_TOP_Y = {"top": 56, "dress": 56, "skirt": 60, "pants": 44, "coat": 50}
_HALF_WIDTH = {"top": 48, "dress": 44, "skirt": 40, "pants": 44, "coat": 52}
_FIXED_BOTTOM = {"top": 176}

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)  # cached masks are shared by every render
    return array


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return mask


@cache
def _pattern_mask(pattern: str) -> np.ndarray:
    yy, xx = _YY.astype(np.int32), _XX.astype(np.int32)
    masks = {
        "stripes": (yy // 8) % 2 == 0,
        "pinstripes": xx % 10 < 2,
        "checks": (yy // 12 + xx // 12) % 2 == 0,
        "dots": (yy % 14 - 7) ** 2 + (xx % 14 - 7) ** 2 < 10,
    }
    if pattern not in masks:
        raise ValueError(f"unknown pattern {pattern!r}; known: {sorted(masks)}")
    return _frozen(masks[pattern])


@cache
def _body(shape: Shape, bottom: int, side: bool) -> np.ndarray:
    """The garment body without sleeves; a side view is the front squeezed to half width."""
    dx = np.abs(_XX + 0.5 - 128) * (2.0 if side else 1.0)
    top, half = _TOP_Y[shape], _HALF_WIDTH[shape]
    rows = (_YY >= top) & (_YY < bottom)
    if shape == "dress":
        mask = rows & (dx < half + np.maximum(0, _YY - 120) * 0.25)
    elif shape == "skirt":
        mask = rows & (dx < half + (_YY - top) * 0.3)
    elif shape == "pants":
        waist = (_YY >= top) & (_YY < 80) & (dx < half)
        legs = rows & (_YY >= 80) & (dx >= 2) & (dx < half)
        mask = waist | legs
    else:
        mask = rows & (dx < half)
    return _frozen(mask)


@cache
def _sleeves(shape: Shape, sleeve: str, kind: str, facing: int) -> np.ndarray:
    """Both sleeves beside the body (front / back / detail) or one along it (side)."""
    top, half, length = _TOP_Y[shape] + 2, _HALF_WIDTH[shape], SLEEVE_LENGTH[sleeve]
    width = 28 if shape == "coat" else 26
    if kind == "side":
        edge = 128 - half // 2 if facing > 0 else 128 + half // 2
        return _frozen(_rect(top, top + length, edge - 12, edge + 12))
    # Sleeves slant outward, leaving a gap under the arm so they read as sleeves.
    rows = (_YY >= top) & (_YY < top + length)
    reach = np.abs(_XX + 0.5 - 128) - half - (_YY - top) * 0.35
    both = rows & (reach >= -2) & (reach < width)
    return _frozen(both)


@cache
def _neckline(shape: Shape, neckline: str) -> np.ndarray:
    top = _TOP_Y[shape]
    dy, dx = _YY - top, np.abs(_XX + 0.5 - 128)
    shapes = {
        "crew": (dy / 12) ** 2 + (dx / 18) ** 2 < 1,
        "v-neck": (dy >= 0) & (dx < (34 - dy) * 0.5),
        "scoop": (dy / 26) ** 2 + (dx / 26) ** 2 < 1,
        "square": (dy < 22) & (dx < 20),
    }
    if neckline not in shapes:
        raise ValueError(f"unknown neckline {neckline!r}; known: {sorted(shapes)}")
    return _frozen(shapes[neckline] & (dy >= 0))


@cache
def _print_masks(shape: Shape, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(print ground, ink) of a chest print (a hip badge on trousers and shorts)."""
    y0, y1, x0, x1 = (54, 74, 140, 164) if shape == "pants" else (92, 124, 106, 150)
    ground = _rect(y0, y1, x0, x1)
    cy, cx, r = (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2
    dy, dx = _YY + 0.5 - cy, _XX + 0.5 - cx
    inks = {
        "graphic": dy**2 + dx**2 < (0.6 * r) ** 2,
        "logo": (np.abs(dy) < 0.25 * r) & (np.abs(dx) < 1.4 * r),
        "appliqué": np.abs(dy) + np.abs(dx) < 0.7 * r,
        "naïve": (np.abs(dy) % 6 < 3) & (np.abs(dx) % 6 < 3) & (np.abs(dy) < 0.7 * r),
    }
    if kind not in inks:
        raise ValueError(f"unknown print {kind!r}; known: {sorted(inks)}")
    return _frozen(ground), _frozen(inks[kind] & ground)


@cache
def _pockets(shape: Shape, kind: str) -> np.ndarray:
    y0, y1 = {"pants": (84, 104), "skirt": (70, 90)}.get(shape, (128, 150))
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    for x0 in (128 - 38, 128 + 14):
        x1 = x0 + 24
        if kind == "welt":
            mask |= _rect(y0 + 4, y0 + 8, x0, x1)
        else:  # patch pockets are outlined; flap pockets also get a filled flap
            mask |= _rect(y0, y1, x0, x1) & ~_rect(y0 + 3, y1 - 3, x0 + 3, x1 - 3)
            if kind == "flap":
                mask |= _rect(y0, y0 + 7, x0, x1)
    return _frozen(mask)


@cache
def _back_detail(shape: Shape, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(detail, knot / zip pull) of a back detail, anchored below the top edge."""
    top = _TOP_Y[shape]
    dy, dx = _YY + 0.5 - top, np.abs(_XX + 0.5 - 128)
    if kind == "zip":
        end = min(92, NEUTRAL_BOTTOM.get(shape, 176) - top - 6)
        return _frozen((dy >= 2) & (dy < end) & (dx < 2)), _frozen((dy >= 2) & (dy < 10) & (dx < 4))
    if kind == "bow":
        wing = (np.abs(dy - 18) < dx * 0.6) & (dx < 18)
        return _frozen(wing), _frozen((np.abs(dy - 18) < 4) & (dx < 3))
    if kind == "cut-out":
        return _frozen(((dy - 28) / 18) ** 2 + (dx / 14) ** 2 < 1), _frozen(
            np.zeros_like(dx, dtype=bool)
        )
    raise ValueError(f"unknown back detail {kind!r}; known: zip, bow, cut-out")


@cache
def _closure(shape: Shape, kind: str) -> np.ndarray:
    """A centre-front button column or zip, down to just above the neutral hem."""
    top = _TOP_Y[shape] + 4
    end = NEUTRAL_BOTTOM.get(shape, _FIXED_BOTTOM.get(shape, SIZE)) - 4
    if shape == "pants":
        end = 78
    dy, dx = _YY + 0.5, np.abs(_XX + 0.5 - 128)
    rows = (dy >= top) & (dy < end)
    if kind == "zip":
        return _frozen(rows & (dx < 2))
    if kind == "buttons":
        return _frozen(rows & ((dy - top) % 16 < 5) & (dx < 3))
    raise ValueError(f"unknown closure {kind!r}; known: buttons, zip")


@dataclass(frozen=True)
class RenderedView:
    """An image ``(256, 256, 3)`` uint8 and, for each attribute visible in it, the sorted
    row-major indices (0..255) of the 16x16-pixel patches its pixels cover."""

    image: np.ndarray
    patches: dict[str, list[int]]


def _check_omit(omit: Collection[str]) -> frozenset[str]:
    unknown = set(omit) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"cannot omit unknown attribute(s) {sorted(unknown)}; known: {ATTRIBUTES}")
    return frozenset(omit)


def _draw(
    garment: Garment, view: ViewSpec, omit: frozenset[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Owner map ``(256, 256)`` uint8 in the garment frame, and the garment-frame regions
    added by ``sleeve`` / ``length`` (bool masks)."""
    attrs, shape = garment.attributes, garment.sub.shape
    side = view.kind == "side"
    front = view.kind in ("front", "detail")
    owner = np.zeros((SIZE, SIZE), dtype=np.uint8)
    regions: dict[str, np.ndarray] = {}
    if "category" in omit:
        return owner, regions
    neutral_bottom = NEUTRAL_BOTTOM.get(shape, _FIXED_BOTTOM.get(shape, SIZE))
    bottom = neutral_bottom
    if "length" in attrs and "length" not in omit:
        bottom = LENGTH_BOTTOM[shape][attrs["length"]]
    body = _body(shape, bottom, side)
    if "length" in attrs:
        regions["length"] = body & ~_body(shape, neutral_bottom, side)
    silhouette = body
    if "sleeve" in attrs:
        sleeves = _sleeves(shape, attrs["sleeve"], view.kind, view.facing)
        regions["sleeve"] = sleeves & ~body
        if "sleeve" not in omit:
            silhouette = body | sleeves
    owner[silhouette] = BASE
    if "pattern" in attrs and "pattern" not in omit:
        owner[silhouette & _pattern_mask(attrs["pattern"])] = PATTERN
    if front and "neckline" in attrs and "neckline" not in omit:
        owner[_neckline(shape, attrs["neckline"]) & body] = NECK
    if front and "print" in attrs and "print" not in omit:
        ground, ink = _print_masks(shape, attrs["print"])
        owner[ground & body] = PRINT
        owner[ink & body] = PRINT_INK
    if front and "closure" in attrs and "closure" not in omit:
        owner[_closure(shape, attrs["closure"]) & body] = CLOSURE
    if front and "pockets" in attrs and "pockets" not in omit:
        owner[_pockets(shape, attrs["pockets"]) & body] = POCKET
    if view.kind == "back" and "back_detail" in attrs and "back_detail" not in omit:
        detail, knot = _back_detail(shape, attrs["back_detail"])
        owner[detail & body] = BACK
        owner[knot & body] = BACK_KNOT
    return owner, regions


def _sample_index(centre: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Garment-frame index of each image row (or column) and whether it lies in the frame."""
    index = np.floor(centre + (np.arange(SIZE) + 0.5 - SIZE / 2) / scale).astype(np.int64)
    valid = (index >= 0) & (index < SIZE)
    return np.where(valid, index, 0), valid


def _to_image(frame: np.ndarray, view: ViewSpec) -> np.ndarray:
    """Nearest-neighbour zoom / shift of a garment-frame map into the image; outside is 0."""
    rows, row_ok = _sample_index(view.centre_y, view.scale)
    cols, col_ok = _sample_index(view.centre_x, view.scale)
    image = frame[rows][:, cols]
    image[~row_ok] = 0
    image[:, ~col_ok] = 0
    return image


def _lut(garment: Garment, omit: frozenset[str]) -> np.ndarray:
    """``(10, 3)`` uint8 colour of each owner id."""
    back = garment.attributes.get("back_detail")
    lut = np.zeros((10, 3), dtype=np.uint8)
    lut[BASE] = NEUTRAL if "colour" in omit else PALETTE[garment.colour]
    lut[PATTERN] = PALETTE[garment.pattern_colour]
    lut[NECK] = NECK_INNER
    lut[PRINT] = PALETTE[garment.print_colour]
    lut[PRINT_INK] = INK
    lut[POCKET] = POCKET_STITCH
    lut[BACK] = {"zip": ZIP, "bow": BOW}.get(back or "", SKIN)
    lut[BACK_KNOT] = ZIP_PULL if back == "zip" else INK
    lut[CLOSURE] = ZIP if garment.attributes.get("closure") == "zip" else BUTTON
    return lut


def background(seed: int) -> np.ndarray:
    """``(256, 256, 3)`` uint8 studio background (flat, blotchy or graded) of a view seed.
    Its red channel is always odd, so it never equals a garment pixel."""
    rng = np.random.default_rng(seed)
    base = rng.integers(150, 246, size=3)
    style = int(rng.integers(3))
    odd_red = np.array([1, 0, 0], dtype=np.uint8)
    # Colours are computed on a small grid and only then expanded to 256 x 256 (speed).
    if style == 1:
        blotches = base + rng.integers(-12, 13, size=(8, 8, 3))
        small = np.clip(blotches, 0, 254).astype(np.uint8) | odd_red
        return np.repeat(np.repeat(small, 32, axis=0), 32, axis=1)
    ramp = np.linspace(-15, 15, SIZE)[:, None] if style == 2 else np.zeros((1, 1))
    rows = np.clip(base + np.round(ramp), 0, 254).astype(np.uint8) | odd_red
    return np.ascontiguousarray(np.broadcast_to(rows[:, None, :], (SIZE, SIZE, 3)))


_PATCH_ID = (
    (np.arange(SIZE)[:, None] // PATCH) * PATCH + np.arange(SIZE)[None, :] // PATCH
).astype(np.int64)
_OWNERS = 10


def render_view(garment: Garment, view: ViewSpec, omit: Collection[str] = ()) -> np.ndarray:
    """The ``(256, 256, 3)`` uint8 RGB image of ``view``; attributes in ``omit`` are drawn
    in their neutral form (see the module docstring).

    Example:
        >>> render_view(garment, product.views[0], omit={"print"}).shape  # doctest: +SKIP
        (256, 256, 3)
    """
    return _render(garment, view, _check_omit(omit), with_patches=False).image


def render_with_patches(garment: Garment, view: ViewSpec) -> RenderedView:
    """The image of ``view`` and the patches of every attribute visible in it."""
    return _render(garment, view, frozenset(), with_patches=True)


def _attribute_patches(
    garment: Garment, view: ViewSpec, owner: np.ndarray, regions: dict[str, np.ndarray]
) -> dict[str, list[int]]:
    """Patches of every attribute with at least one pixel in the image."""
    # One bincount tells, for every patch, which owner ids occur in it.
    present = np.bincount((_PATCH_ID * _OWNERS + owner).ravel(), minlength=SIZE * _OWNERS)
    present = present.reshape(SIZE, _OWNERS) > 0
    patches: dict[str, list[int]] = {}
    for attribute in ATTRIBUTES:
        if attribute not in garment.attributes:
            continue
        if attribute == "category":
            hits = present[:, 1:].any(axis=1)
        elif attribute in LAYER_OWNERS:
            hits = present[:, list(LAYER_OWNERS[attribute])].any(axis=1)
        else:
            mask = _to_image(regions[attribute].view(np.uint8), view)
            hits = mask.reshape(PATCH, SIZE // PATCH, PATCH, SIZE // PATCH).any(axis=(1, 3)).ravel()
        index = np.flatnonzero(hits)
        if index.size:
            patches[attribute] = index.tolist()
    return patches


def _render(
    garment: Garment, view: ViewSpec, omit: frozenset[str], with_patches: bool
) -> RenderedView:
    frame, regions = _draw(garment, view, omit)
    owner = _to_image(frame, view)
    image = background(view.bg_seed)
    worn = owner != BG
    image[worn] = _lut(garment, omit)[owner[worn]]
    patches = _attribute_patches(garment, view, owner, regions) if with_patches else {}
    return RenderedView(image, patches)
