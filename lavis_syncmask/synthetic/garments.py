"""Garment drawers of the synthetic renderer: the parts (polygons and strokes, in the canonical
256 x 256 frame, back to front) of one garment seen from the front, back or side, for a given
set of attribute values, and the points a detail crop may zoom onto.

Views differ in what they can show, as real product photos do: the neckline, front print,
pockets and front closure are drawn on the front only, back details on the back only; the side
shows the silhouette, colour, pattern, one sleeve and the hem.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lavis_syncmask.synthetic.details import (
    back_detail,
    closure,
    front_print,
    neckline,
    pockets,
)
from lavis_syncmask.synthetic.geometry import (
    CENTRE,
    Drawing,
    Face,
    ellipse,
    mirror_x,
    pts,
    quad_strip,
    rect,
)
from lavis_syncmask.synthetic.taxonomy import Kind

CX = CENTRE
#: The value the renderer gives ``length`` when that attribute is omitted: a hem position that
#: no real value uses, so omitting the length always moves the hem.
NEUTRAL_LENGTH = "neutral"

SHAPES: dict[str, dict[str, float]] = {
    "top": {"top": 46, "hem": 196, "shoulder": 58, "hem_half": 52, "neck": 17},
    "jacket": {"top": 42, "hem": 214, "shoulder": 62, "hem_half": 58, "neck": 18},
    "dress": {"top": 28, "shoulder": 46, "neck": 16, "waist": 104, "waist_half": 34, "flare": 0.42},
    "skirt": {"waist": 52, "waist_half": 50, "flare": 0.30, "pleats": 0.0},
    "pants": {"waist": 42, "waist_half": 54, "hip_half": 60, "crotch": 80, "hem": 238},
    "bag": {"bag_top": 100, "bag_bottom": 216, "bag_half": 70},
}
#: Hem y per length value; tops use fractions of their body length instead.
HEMS: dict[str, dict[str, float]] = {
    "dress": {"mini": 150, "knee": 180, "midi": 208, "maxi": 240, NEUTRAL_LENGTH: 194},
    "skirt": {"mini": 124, "knee": 172, "midi": 204, "maxi": 238, NEUTRAL_LENGTH: 188},
    "pants": {"cropped": 204, "full": 238, NEUTRAL_LENGTH: 221},
}
TOP_LENGTH = {"cropped": 0.70, "longline": 1.16, NEUTRAL_LENGTH: 0.86}
SLEEVE_LENGTH = {"short": (46.0, 36.0), "three-quarter": (100.0, 28.0), "long": (138.0, 24.0)}


def shape_of(kind: Kind, overrides: Mapping[str, float]) -> dict[str, float]:
    """The kind's default measurements with a subcategory's overrides applied."""
    unknown = set(overrides) - set(SHAPES[kind]) - {"hem", "crotch", "polo"}
    if unknown:
        raise ValueError(f"unknown shape keys {sorted(unknown)} for kind {kind!r}")
    return {**SHAPES[kind], **overrides}


def hem_y(kind: Kind, shape: Mapping[str, float], length: str | None) -> float:
    """The hem of the garment for a ``length`` value (``None``: the kind's default)."""
    if kind in ("top", "jacket"):
        factor = TOP_LENGTH.get(length, 1.0) if length else 1.0
        return shape["top"] + factor * (shape["hem"] - shape["top"])
    if kind in HEMS:
        if length is None:
            return shape.get("hem", HEMS[kind].get("knee", 238.0))
        if length not in HEMS[kind]:
            raise ValueError(
                f"length {length!r} is not drawn for kind {kind!r}: {sorted(HEMS[kind])}"
            )
        return HEMS[kind][length]
    return shape["bag_bottom"]


def draw_garment(
    kind: Kind, shape: Mapping[str, float], attrs: Mapping[str, str], face: Face
) -> Drawing:
    """All parts of one garment for ``face`` given its attribute values ``attrs``."""
    d = Drawing()
    hem = hem_y(kind, shape, attrs.get("length"))
    if kind in ("top", "jacket", "dress"):
        _upper_body(d, kind, shape, attrs, face, hem)
    elif kind in ("skirt", "pants"):
        _lower_body(d, kind, shape, attrs, face, hem)
    else:
        _bag(d, shape, attrs, face)
    return d


# --- tops, jackets, dresses ---------------------------------------------------------------


def _torso(kind: Kind, s: Mapping[str, float], hem: float) -> np.ndarray:
    top, neck, sh = s["top"], s["neck"], s["shoulder"]
    left = [(CX - neck, top), (CX - sh, top + 14), (CX - sh + 6, top + 56)]
    if kind == "dress":
        waist = s["waist"]
        left += [
            (CX - s["waist_half"], waist),
            (CX - s["waist_half"] - s["flare"] * (hem - waist), hem),
        ]
    else:
        left += [(CX - s["hem_half"], hem)]
    side = pts(*left)
    neck_arc = ellipse(CX, top, neck, 6, 0, 180, n=9)  # a shallow, plain neck opening
    return np.concatenate([side, mirror_x(side)[::-1], neck_arc[1:-1]])


def _upper_body(
    d: Drawing, kind: Kind, s: Mapping[str, float], attrs: Mapping[str, str], face: Face, hem: float
) -> None:
    top, sleeves = s["top"], attrs.get("sleeves")
    if face != "side" and sleeves in SLEEVE_LENGTH:
        _sleeve(d, s, sleeves)  # behind the body
    d.add("body", _torso(kind, s, hem), "body_edge", hem=True)
    if face == "side":
        _side_sleeve(d, s, sleeves)
    elif sleeves == "sleeveless":
        armhole = pts(
            (CX - s["shoulder"], top + 14),
            (CX - s["shoulder"] + 9, top + 36),
            (CX - s["shoulder"] + 6, top + 56),
        )
        d.line("binding", armhole, 5.0)
        d.line("binding", mirror_x(armhole), 5.0)
    lower = s.get("waist", hem - 40)
    d.anchors["colour"] = d.anchors["pattern"] = (CX + 16, top + 0.55 * (lower - top))
    d.anchors["length"] = (CX + 20, hem - 14)
    d.anchors["sleeves"] = (CX - s["shoulder"] - 6, top + 40)
    if face == "front":
        closure(d, kind, s, attrs.get("closure"), hem)
        neckline(d, s, attrs.get("neckline"))
        pockets(d, kind, s, attrs.get("pockets"), hem)
        front_print(d, kind, s, attrs.get("front_print"))
    elif face == "back":
        waist = s["waist"] if kind == "dress" else top + 84
        back_detail(d, kind, s, attrs.get("back_detail"), waist, hem)


def _sleeve(d: Drawing, s: Mapping[str, float], value: str) -> None:
    length, end_width = SLEEVE_LENGTH[value]
    shoulder = np.array([CX - s["shoulder"], s["top"] + 14])
    armpit = np.array([CX - s["shoulder"] + 6, s["top"] + 56])
    direction = np.array([-0.40, 1.0]) / np.hypot(0.40, 1.0)
    inward = np.array([direction[1], -direction[0]])
    outer_end = shoulder + direction * length
    inner_end = outer_end + inward * end_width
    d.add(
        "sleeve", np.stack([shoulder, outer_end, inner_end, armpit]), "sleeve_edge", mirrored=True
    )
    if value == "long":
        cuff = np.stack(
            [outer_end - direction * 11, outer_end, inner_end, inner_end - direction * 11]
        )
        d.add("cuff", cuff, "sleeve_edge", mirrored=True)
    d.anchors["sleeves"] = tuple((outer_end + inner_end) / 2)  # type: ignore[assignment]


def _side_sleeve(d: Drawing, s: Mapping[str, float], value: str | None) -> None:
    top = s["top"]
    if value == "sleeveless":
        d.line("binding", ellipse(CX, top + 34, 16, 24, n=16), 4.0)
    elif value in SLEEVE_LENGTH:
        length, end_width = SLEEVE_LENGTH[value]
        start, end = np.array([CX, top + 6]), np.array([CX + 4, top + 6 + length])
        d.add("sleeve", quad_strip(start, end, 52.0, end_width * 1.6), "sleeve_edge")
        if value == "long":
            d.add(
                "cuff",
                quad_strip(end - np.array([0.3, 11.0]), end, end_width * 1.6, end_width * 1.6),
                "sleeve_edge",
            )


# --- skirts, pants, bags ------------------------------------------------------------------


def _lower_body(
    d: Drawing, kind: Kind, s: Mapping[str, float], attrs: Mapping[str, str], face: Face, hem: float
) -> None:
    waist, wh = s["waist"], s["waist_half"]
    if kind == "skirt":
        f = s["flare"] + 0.06 * s["pleats"]
        left = pts((CX - wh, waist), (CX - wh - f * (hem - waist), hem))
        d.add("body", np.concatenate([left, mirror_x(left)[::-1]]), "body_edge", hem=True)
        if s["pleats"] > 0:
            for x in np.arange(CX - wh + 12, CX + wh - 4, 14.0):
                drift = f * (x - CX) / wh
                d.line(
                    "body_edge", pts((x, waist), (x + drift * (hem - waist), hem)), 1.5, hem=True
                )
    else:
        hip, crotch = s["hip_half"], waist + s["crotch"]
        left = pts((CX - wh, waist), (CX - hip, waist + 50), (CX - hip - 2, hem), (CX - 8, hem))
        d.add(
            "body",
            np.concatenate([left, pts((CX, crotch)), mirror_x(left)[::-1]]),
            "body_edge",
            hem=True,
        )
    d.add("waistband", rect(CX - wh, waist - 12, CX + wh, waist), "body_edge")
    d.anchors["colour"] = d.anchors["pattern"] = (CX - 20, waist + 40)
    d.anchors["length"] = (CX - 30, hem - 12)
    if face == "front":
        _lower_front(d, kind, s, attrs)
    elif face == "back":
        back_detail(d, kind, s, attrs.get("back_detail"), waist, hem)


def _lower_front(d: Drawing, kind: Kind, s: Mapping[str, float], attrs: Mapping[str, str]) -> None:
    waist, wh = s["waist"], s["waist_half"]
    pockets, closure = attrs.get("pockets"), attrs.get("closure")
    if pockets == "slant":
        d.add(
            "pocket",
            pts((CX - wh, waist + 4), (CX - wh + 24, waist + 4), (CX - wh + 2, waist + 40)),
            "pocket_edge",
            mirrored=True,
        )
        d.anchors["pockets"] = (CX - wh + 10, waist + 16)
    elif pockets is not None:
        raise ValueError(f"no drawing for pockets {pockets!r} on kind {kind!r}")
    if closure == "fly":
        d.line(
            "closure_line",
            pts((CX + 2, waist + 2), (CX + 2, waist + 50), (CX - 8, waist + 60)),
            2.5,
        )
        d.add("button", ellipse(CX, waist - 6, 4.2, 4.2, n=10), "button_rim")
        d.anchors["closure"] = (CX, waist + 24)
    elif closure == "buttons":
        for i in range(4):
            d.add("button", ellipse(CX, waist + 12 + 18 * i, 4.2, 4.2, n=10), "button_rim")
        d.anchors["closure"] = (CX, waist + 38)
    elif closure is not None:
        raise ValueError(f"no drawing for closure {closure!r} on kind {kind!r}")


def _bag(d: Drawing, s: Mapping[str, float], attrs: Mapping[str, str], face: Face) -> None:
    top, bottom, half = s["bag_top"], s["bag_bottom"], s["bag_half"]
    reach = 56.0 if top >= 100 else 40.0
    handle = ellipse(CX, top + 2, half * 0.45, reach + (top - 100) * 0.6, 180, 360, n=18)
    d.line("handle", handle, 6.0)
    d.add(
        "body",
        pts((CX - half + 8, top), (CX + half - 8, top), (CX + half, bottom), (CX - half, bottom)),
        "body_edge",
    )
    d.anchors["colour"] = d.anchors["pattern"] = (CX + half * 0.5, (top + bottom) / 2)
    if face == "front":
        if attrs.get("pockets") == "front":
            d.add("pocket", rect(CX - 34, top + 56, CX + 34, top + 96), "pocket_edge")
            d.line("pocket_edge", pts((CX - 30, top + 62), (CX + 30, top + 62)), 2.0)
            d.anchors["pockets"] = (CX, top + 76)
        front_print(d, "bag", s, attrs.get("front_print"))
    elif face == "back":
        back_detail(d, "bag", {"top": top}, attrs.get("back_detail"), top, bottom)
