"""The view-specific details of the synthetic garments, in the canonical frame: neckline,
front closure, pockets and front print (drawn on the front) and back details (drawn on the
back). Each adds its parts to a :class:`~geometry.Drawing` and, on the front, the point a
detail crop may zoom onto.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lavis_syncmask.synthetic.geometry import CENTRE, Drawing, Part, ellipse, pts, rect, star
from lavis_syncmask.synthetic.labels import LABEL_ID as L
from lavis_syncmask.synthetic.taxonomy import Kind

CX = CENTRE


def neckline(d: Drawing, s: Mapping[str, float], value: str | None) -> None:
    if value is None:
        return
    top, nk = s["top"], s["neck"]
    d.anchors["neckline"] = (CX, top + 12)
    if value == "crew":
        d.add("neck_trim", ellipse(CX, top, nk + 5, 19, 0, 180), "neck_edge")
        d.add("neck_opening", ellipse(CX, top, nk, 13, 0, 180))
    elif value == "v-neck":
        d.add("neck_trim", pts((CX - nk - 5, top), (CX + nk + 5, top), (CX, top + 46)), "neck_edge")
        d.add("neck_opening", pts((CX - nk, top), (CX + nk, top), (CX, top + 38)))
    elif value == "scoop":
        d.add("neck_trim", ellipse(CX, top, nk + 11, 33, 0, 180), "neck_edge")
        d.add("neck_opening", ellipse(CX, top, nk + 7, 28, 0, 180))
    elif value == "turtleneck":
        d.add("neck_trim", rect(CX - nk - 3, top - 16, CX + nk + 3, top + 7), "neck_edge")
        d.line("neck_edge", pts((CX - nk - 3, top - 5), (CX + nk + 3, top - 5)), 1.5)
    elif value in ("spread collar", "point collar"):
        d.add("neck_trim", rect(CX - nk - 1, top - 6, CX + nk + 1, top + 2), "neck_edge")
        d.add("neck_opening", pts((CX - nk + 3, top), (CX + nk - 3, top), (CX, top + 20)))
        tip = (CX - nk - 16, top + 18) if value == "spread collar" else (CX - nk - 8, top + 32)
        d.add(
            "neck_trim",
            pts((CX - nk - 1, top - 5), (CX - 1, top + 22), tip),
            "neck_edge",
            mirrored=True,
        )
    elif value == "notch lapels":
        d.add("neck_opening", pts((CX - nk, top), (CX + nk, top), (CX, top + 78)))
        lapel = pts(
            (CX - nk + 1, top - 3),
            (CX - nk - 18, top + 30),
            (CX - nk - 9, top + 33),
            (CX - nk - 20, top + 44),
            (CX - 1, top + 84),
            (CX - 3, top + 72),
        )
        d.add("neck_trim", lapel, "neck_edge", mirrored=True)
    elif value == "stand collar":
        d.add("neck_trim", rect(CX - nk - 4, top - 12, CX + nk + 4, top + 5), "neck_edge")
        d.line("neck_edge", pts((CX, top - 12), (CX, top + 5)), 2.0)
    else:
        raise ValueError(f"no drawing for neckline {value!r}")


def closure(d: Drawing, kind: Kind, s: Mapping[str, float], value: str | None, hem: float) -> None:
    if value is None:
        return
    top = s["top"]
    if value == "zip":
        d.add("closure_metal", rect(CX - 2, top - 4, CX + 2, hem), hem=True)
        d.add("button_rim", rect(CX - 4, top + 4, CX + 4, top + 16))
        d.anchors["closure"] = (CX, top + 60)
        return
    # a placket must not follow the hem of a garment whose length varies (dresses)
    end = s["waist"] + 40 if kind == "dress" else hem - 2
    end = top + 44 if s.get("polo", 0.0) > 0 else end
    follows_hem = kind != "dress" and s.get("polo", 0.0) == 0
    d.parts.append(Part(L["closure_line"], rect(CX - 2.5, top + 8, CX + 2.5, end), hem=follows_hem))
    start = top + (86 if kind == "jacket" else 28)
    for y in np.arange(start, end - 6, 22.0):
        d.add("button", ellipse(CX, float(y), 4.2, 4.2, n=10), "button_rim", hem=follows_hem)
    d.anchors["closure"] = (CX, start + 20)


def pockets(d: Drawing, kind: Kind, s: Mapping[str, float], value: str | None, hem: float) -> None:
    if value is None:
        return
    top = s["top"]
    if value == "chest":
        x0 = CX - 36 if kind == "dress" else CX - 40
        d.add("pocket", rect(x0, top + 48, x0 + 22, top + 72), "pocket_edge")
        d.anchors["pockets"] = (x0 + 11, top + 60)
    elif value == "kangaroo":
        kangaroo = pts(
            (CX - 30, hem - 70), (CX + 30, hem - 70), (CX + 44, hem - 24), (CX - 44, hem - 24)
        )
        d.add("pocket", kangaroo, "pocket_edge", hem=True)
        d.anchors["pockets"] = (CX, hem - 46)
    elif value == "patch" and kind == "dress":
        y = s["waist"] + 12
        x0 = CX - s["waist_half"] - 2
        d.add("pocket", rect(x0, y, x0 + 24, y + 26), "pocket_edge", mirrored=True)
        d.anchors["pockets"] = (x0 + 12, y + 13)
    elif value in ("patch", "flap"):
        x0, y0 = CX - s["hem_half"] + 9, hem - 66
        d.add("pocket", rect(x0, y0, x0 + 32, y0 + 30), "pocket_edge", hem=True, mirrored=True)
        if value == "flap":
            flap = rect(x0 - 2, y0 - 6, x0 + 34, y0 + 6)
            d.add("pocket", flap, "pocket_edge", hem=True, mirrored=True)
        d.anchors["pockets"] = (x0 + 16, y0 + 14)
    else:
        raise ValueError(f"no drawing for pockets {value!r} on kind {kind!r}")


def front_print(d: Drawing, kind: Kind, s: Mapping[str, float], value: str | None) -> None:
    if value is None:
        return
    if kind == "bag":
        x, y, k = CX, s["bag_top"] + 40, 0.8
    elif kind == "jacket":
        x, y, k = CX + 30, s["top"] + 98, 0.5
    elif s.get("polo", 0.0) > 0:
        x, y, k = CX - 28, s["top"] + 52, 0.5
    else:
        x, y, k = CX, s["top"] + 64, 1.0
    d.anchors["front_print"] = (x, y)
    if value == "logo":
        d.add("print_c", rect(x - 18 * k, y - 8 * k, x + 18 * k, y + 8 * k))
        d.add("print_b", rect(x - 13 * k, y - 3 * k, x - 2 * k, y + 3 * k))
        d.add("print_a", rect(x + 2 * k, y - 3 * k, x + 13 * k, y + 3 * k))
    elif value == "graphic":
        d.add("print_a", ellipse(x, y, 19 * k, 19 * k))
        d.add("print_b", pts((x, y - 13 * k), (x + 12 * k, y + 9 * k), (x - 12 * k, y + 9 * k)))
        d.add("print_c", ellipse(x, y + 2 * k, 4 * k, 4 * k, n=10))
    elif value == "slogan":
        for i, half in enumerate((22.0, 17.0, 20.0)):
            d.add(
                "print_c",
                rect(x - half * k, y + (i * 10 - 14) * k, x + half * k, y + (i * 10 - 9) * k),
            )
        d.add("print_a", rect(x - 22 * k, y + 17 * k, x + 22 * k, y + 20 * k))
    elif value == "appliqué":
        d.add("print_b", star(x, y, 22 * k, 9 * k), "print_c")
    elif value == "floral":
        for angle in np.radians(np.arange(0, 360, 72)):
            d.add(
                "print_a",
                ellipse(x + 10 * k * np.cos(angle), y + 10 * k * np.sin(angle), 8 * k, 8 * k, n=12),
            )
        d.add("print_b", ellipse(x, y, 6 * k, 6 * k, n=12), "print_c")
    else:
        raise ValueError(f"no drawing for front_print {value!r}")


def back_detail(
    d: Drawing, kind: Kind, s: Mapping[str, float], value: str | None, waist: float, hem: float
) -> None:
    if value is None:
        return
    top = s.get("top", s.get("waist", 0.0))
    d.anchors["back_detail"] = (CX, top + 50)
    if value == "zip":
        d.add(
            "back_metal", rect(CX - 2.5, top + 4, CX + 2.5, top + (58 if kind == "skirt" else 90))
        )
        d.add("back_dark", rect(CX - 4, top + 4, CX + 4, top + 16))
    elif value == "bow":
        y = waist if kind != "skirt" else top + 8
        d.add(
            "back_dark",
            pts((CX, y), (CX - 26, y - 13), (CX - 26, y + 13)),
            "back_light",
            mirrored=True,
        )
        d.add("back_light", rect(CX - 5, y - 6, CX + 5, y + 6), "back_dark")
        d.anchors["back_detail"] = (CX, y)
    elif value == "cut-out":
        d.add("back_trim", ellipse(CX, top + 44, 22, 30))
        d.add("back_opening", ellipse(CX, top + 44, 17, 25))
    elif value == "lace-up":
        d.add("back_trim", rect(CX - 12, top + 24, CX + 12, top + 100))
        d.add("back_opening", rect(CX - 8, top + 26, CX + 8, top + 98))
        zigzag = pts(*[(CX + (8 if i % 2 else -8), top + 28 + 9 * i) for i in range(8)])
        d.line("back_light", zigzag, 2.0)
    elif value == "back pockets":
        if kind == "bag":
            d.add("back_trim", rect(CX - 50, top + 30, CX + 50, top + 80), "back_dark")
        else:
            d.add(
                "back_trim", rect(CX - 48, top + 16, CX - 16, top + 52), "back_dark", mirrored=True
            )
            d.anchors["back_detail"] = (CX - 32, top + 34)
    elif value == "half-belt":
        d.add("back_trim", rect(CX - 42, top + 112, CX + 42, top + 124), "back_dark")
        for x in (CX - 34, CX + 34):
            d.add("back_light", ellipse(x, top + 118, 4, 4, n=10))
        d.anchors["back_detail"] = (CX, top + 118)
    elif value == "vent":
        d.add("back_trim", rect(CX - 3, hem - 56, CX + 3, hem), hem=True)
        d.line("back_dark", pts((CX, hem - 56), (CX, hem)), 2.0, hem=True)
        d.anchors["back_detail"] = (CX, hem - 28)
    else:
        raise ValueError(f"no drawing for back_detail {value!r}")
