"""Part labels of the synthetic renderer: every pixel of a rendered view carries the label of
the garment part drawn on top there, and the label decides its paint and which attributes
change that pixel when omitted. That table is what makes the visibility sidecar exact: the
patches of an attribute are the patches holding a label that depends on it (plus, for
``length``, where the hem moves), so omitting it can change no pixel outside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

PaintKind = Literal["background", "fabric", "ink", "shade", "fixed"]


@dataclass(frozen=True)
class Label:
    """How one part label is painted, and which attributes its pixels depend on."""

    name: str
    paint: PaintKind
    value: float | tuple[int, int, int] = 1.0  # shade factor, or a fixed RGB
    attributes: frozenset[str] = frozenset()  # besides "category", which every part depends on


def _label(name: str, paint: PaintKind, value: float | tuple[int, int, int], *attrs: str) -> Label:
    return Label(name, paint, value, frozenset(attrs))


LABELS: tuple[Label, ...] = (
    _label("background", "background", 1.0),
    _label("body", "fabric", 1.0, "colour"),
    _label("body_edge", "shade", 0.72, "colour"),
    _label("sleeve", "fabric", 0.94, "colour", "sleeves"),
    _label("sleeve_edge", "shade", 0.70, "colour", "sleeves"),
    _label("cuff", "shade", 0.84, "colour", "sleeves"),
    _label("binding", "shade", 0.74, "colour", "sleeves"),
    _label("neck_opening", "background", 1.0, "neckline"),
    _label("neck_trim", "shade", 0.86, "colour", "neckline"),
    _label("neck_edge", "shade", 0.64, "colour", "neckline"),
    _label("print_a", "fixed", (205, 35, 45), "front_print"),
    _label("print_b", "fixed", (245, 200, 45), "front_print"),
    _label("print_c", "fixed", (25, 25, 35), "front_print"),
    _label("pocket", "shade", 0.88, "colour", "pockets"),
    _label("pocket_edge", "shade", 0.60, "colour", "pockets"),
    _label("back_metal", "fixed", (176, 176, 184), "back_detail"),
    _label("back_dark", "fixed", (30, 27, 32), "back_detail"),
    _label("back_light", "fixed", (238, 236, 226), "back_detail"),
    _label("back_opening", "background", 1.0, "back_detail"),
    _label("back_trim", "shade", 0.70, "colour", "back_detail"),
    _label("closure_line", "shade", 0.78, "colour", "closure"),
    _label("closure_metal", "fixed", (176, 176, 184), "closure"),
    _label("button", "fixed", (236, 230, 214), "closure"),
    _label("button_rim", "fixed", (74, 56, 40), "closure"),
    _label("waistband", "shade", 0.82, "colour"),
    _label("handle", "shade", 0.62, "colour"),
    # the pattern's ink on the fabric labels (the renderer relabels fabric pixels under the ink)
    _label("body_ink", "ink", 1.0, "colour", "pattern"),
    _label("sleeve_ink", "ink", 0.94, "colour", "pattern", "sleeves"),
)
LABEL_ID: dict[str, int] = {label.name: i for i, label in enumerate(LABELS)}
#: ``(L,)`` uint8: the label a pixel takes under the pattern's ink (fabric -> its ink label).
INK_LUT = np.arange(len(LABELS), dtype=np.uint8)
INK_LUT[LABEL_ID["body"]] = LABEL_ID["body_ink"]
INK_LUT[LABEL_ID["sleeve"]] = LABEL_ID["sleeve_ink"]
#: ``(L,)`` uint8: 255 where the label shows the background image, else 0.
BACKGROUND_LUT = np.array(
    [255 if lab.paint == "background" else 0 for lab in LABELS], dtype=np.uint8
)
#: Shades are pulled towards this colour, so no garment colour is its own shade.
SHADE_ANCHOR = np.array([61.0, 47.0, 83.0])


def attribute_label_table(attributes: tuple[str, ...]) -> np.ndarray:
    """``(A, L)`` bool: label ``l`` depends on attribute ``a`` (``category``: every non-background
    label; ``length`` moves the hem and is handled by the renderer)."""
    table = np.zeros((len(attributes), len(LABELS)), dtype=bool)
    for a, name in enumerate(attributes):
        for i, label in enumerate(LABELS):
            if name == "category":
                table[a, i] = i != 0
            else:
                table[a, i] = name in label.attributes
    return table


def label_palette(rgb: tuple[int, int, int]) -> np.ndarray:
    """``(L, 3)`` uint8 paint of every label for garment colour ``rgb`` (background labels get a
    placeholder: the renderer pastes the background image there)."""
    base = np.asarray(rgb, dtype=np.float64)
    out = np.zeros((len(LABELS), 3))
    for i, label in enumerate(LABELS):
        if label.paint in ("fabric", "shade", "ink"):
            k = float(label.value)  # type: ignore[arg-type]
            out[i] = base * k + SHADE_ANCHOR * (1.0 - k)
            if label.paint == "ink":
                out[i] = ink_colour(tuple(np.clip(np.rint(out[i]), 0, 255).astype(int)))  # type: ignore[arg-type]
        elif label.paint == "fixed":
            out[i] = label.value
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def palette_bytes(rgb: tuple[int, int, int]) -> bytes:
    """:func:`label_palette` as the 768-byte palette of a PIL "P" image."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(LABELS)] = label_palette(rgb)
    return palette.tobytes()


def ink_colour(rgb: tuple[int, int, int]) -> np.ndarray:
    """``(3,)`` uint8 colour of the pattern on a garment of colour ``rgb``: darker on light
    garments, lighter on dark ones."""
    base = np.asarray(rgb, dtype=np.float64)
    luminance = 0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2]
    ink = base * 0.45 if luminance > 110 else base * 0.35 + 0.65 * 236.0
    return np.clip(np.rint(ink), 0, 255).astype(np.uint8)
