"""The fixed vocabulary of the synthetic fashion catalogue (benchmarks-and-data.md, "The synthetic
fashion set"): attribute names, views, colours, patterns, the record types of the subcategory
table (subcategories.py), brands and the other FashionGen-like metadata pools.

Everything here is data; sampling lives in ``catalogue.py`` and drawing in ``garments.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

Kind = Literal["top", "dress", "pants", "skirt", "jacket", "bag"]
Pose = Literal["front", "back", "side", "detail"]
POSES: tuple[str, ...] = get_args(Pose)

#: Every attribute name the sidecar may carry. ``category`` (the garment itself) and ``colour``
#: are present on every product; the others only where the subcategory allows them.
ATTRIBUTES: tuple[str, ...] = (
    "category",
    "colour",
    "pattern",
    "sleeves",
    "neckline",
    "front_print",
    "back_detail",
    "pockets",
    "length",
    "closure",
)
OPTIONAL_ATTRIBUTES: tuple[str, ...] = ATTRIBUTES[2:]

#: Garment colours: name -> (RGB, names used in text). No RGB equals NEUTRAL_RGB, which the
#: renderer paints when ``colour`` is omitted.
COLOURS: dict[str, tuple[tuple[int, int, int], tuple[str, ...]]] = {
    "black": ((22, 22, 26), ("black", "jet black")),
    "white": ((247, 246, 242), ("white", "optic white")),
    "cream": ((236, 226, 200), ("cream", "ivory", "écru")),
    "navy": ((28, 38, 84), ("navy", "navy blue", "midnight")),
    "blue": ((62, 110, 190), ("blue", "cobalt")),
    "light blue": ((150, 190, 226), ("light blue", "sky blue")),
    "red": ((196, 32, 40), ("red", "scarlet")),
    "burgundy": ((110, 24, 44), ("burgundy", "wine")),
    "pink": ((232, 150, 178), ("pink", "blush")),
    "green": ((40, 120, 70), ("green", "forest green")),
    "olive": ((108, 112, 54), ("olive", "khaki green")),
    "yellow": ((232, 196, 48), ("yellow", "mustard")),
    "orange": ((222, 112, 36), ("orange", "rust")),
    "purple": ((112, 64, 150), ("purple", "lilac")),
    "brown": ((112, 72, 44), ("brown", "chocolate", "café")),
    "beige": ((206, 184, 150), ("beige", "sand")),
    "grey": ((120, 120, 124), ("grey", "heather grey")),
    "charcoal": ((66, 66, 70), ("charcoal",)),
    "indigo": ((42, 56, 104), ("indigo", "dark blue")),
}
NEUTRAL_RGB: tuple[int, int, int] = (140, 140, 140)

#: Pattern values and the non-solid looks the renderer draws for them.
PATTERNS: tuple[str, ...] = ("stripes", "checks", "dots", "chevron")


@dataclass(frozen=True)
class AttributeSpec:
    """Which values an attribute takes in one subcategory, and how often it is present."""

    values: tuple[str, ...]
    presence: float = 1.0


@dataclass(frozen=True)
class Subcategory:
    """One FashionGen-like subcategory and what its products look like."""

    name: str  # as in ``input_subcategory``, e.g. "T-SHIRTS"
    category: str  # as in ``input_category``, e.g. "TOPS"
    kind: Kind  # which garment drawer renders it
    nouns: tuple[str, ...]  # garment nouns of the text, e.g. ("t-shirt", "tee")
    genders: tuple[str, ...]
    materials: tuple[str, ...]
    attributes: Mapping[str, AttributeSpec]
    shape: Mapping[str, float] = field(default_factory=dict)  # overrides of the kind's shape
    colours: tuple[str, ...] = tuple(COLOURS)
    department: str = "CLOTHING"


BRANDS: tuple[str, ...] = (
    "Acne Studios",
    "Maison Lévêque",
    "Atelier Noël",
    "Norse Projects",
    "A.P.C.",
    "Our Legacy",
    "Sørensen",
    "Études",
    "Kenzo",
    "Ganni",
    "Wood Wood",
    "Carhartt WIP",
    "Ami Alexandre Mattiussi",
    "Isabel Marant Étoile",
    "Stüssy",
    "Tibi",
    "Filippa K",
    "Nanushka",
    "Jil Sander",
    "Séraphine",
    "Helmut Lang",
    "Loewe",
    "Rag & Bone",
    "Thom Browne",
    "Ader Error",
    "Nørgaard",
    "Maison Kitsuné",
    "Marni",
    "Coperni",
    "Molly Goddard",
    "Ami Paris",
    "Universal Works",
    "Sunnei",
    "Baserange",
)
SEASONS: tuple[str, ...] = ("SS2016", "FW2016", "SS2017", "FW2017", "SS2018")
#: Materials whose composition line is not "100% <material>".
COMPOSITIONS: dict[str, str] = {
    "stretch denim": "98% cotton, 2% elastane",
    "selvedge denim": "100% cotton",
    "denim": "100% cotton",
    "organic cotton": "100% organic cotton",
    "jersey": "100% cotton",
    "poplin": "100% cotton",
    "cotton twill": "100% cotton",
    "cotton fleece": "80% cotton, 20% polyester",
    "french terry": "100% cotton",
    "cotton piqué": "100% cotton",
    "merino wool": "100% merino wool",
    "crêpe": "100% polyester",
    "chiffon": "100% silk",
    "grained leather": "100% calfskin",
    "tweed": "70% wool, 30% alpaca",
    "velvet": "82% viscose, 18% silk",
}
#: Median retail price (USD) per category; prices are log-normal around it.
MSRP_MEDIAN: dict[str, float] = {
    "TOPS": 140.0,
    "SHIRTS": 210.0,
    "SWEATERS": 320.0,
    "DRESSES": 560.0,
    "JEANS": 240.0,
    "PANTS": 330.0,
    "JACKETS & COATS": 890.0,
    "SKIRTS": 380.0,
    "SHORTS": 190.0,
    "BAGS": 720.0,
}
