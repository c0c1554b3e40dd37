"""The fixed vocabulary of the synthetic fashion catalogue (benchmarks-and-data.md, "The synthetic
fashion set"): categories and subcategories, the visual attributes each subcategory can carry
and their values, colours, materials, brands and the other FashionGen-like metadata pools.

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


def _a(values: str, presence: float = 1.0) -> AttributeSpec:
    return AttributeSpec(tuple(values.split("|")), presence)


_PATTERN = _a("|".join(PATTERNS), 0.35)
_BOTH = ("MEN", "WOMEN")
_TOP_MATERIALS = ("cotton", "organic cotton", "jersey", "linen", "modal")
_KNIT = ("wool", "merino wool", "cashmere", "cotton")
_DRESS_MATERIALS = ("crêpe", "silk", "viscose", "cotton", "satin")
_JEANS_COLOURS = ("indigo", "blue", "light blue", "black", "white")

#: In order of frequency: catalogue.py gives the i-th subcategory weight 1 / (i + 1) ** 0.8.
SUBCATEGORIES: tuple[Subcategory, ...] = (
    Subcategory(
        "T-SHIRTS", "TOPS", "top", ("t-shirt", "tee"), _BOTH, _TOP_MATERIALS,
        {"sleeves": _a("short|short|long"), "neckline": _a("crew|v-neck|scoop", 0.9),
         "front_print": _a("logo|graphic|slogan|appliqué|floral", 0.6), "pattern": _PATTERN,
         "pockets": _a("chest", 0.2), "back_detail": _a("cut-out", 0.12),
         "length": _a("cropped|longline", 0.15)},
    ),
    Subcategory(
        "SHIRTS", "SHIRTS", "top", ("shirt", "oxford shirt"), _BOTH, ("cotton", "poplin", "linen"),
        {"sleeves": _a("long|long|short"), "neckline": _a("spread collar|point collar"),
         "closure": _a("buttons"), "pockets": _a("chest", 0.5), "pattern": _a("stripes|checks|dots", 0.5)},
        {"hem": 206},
    ),
    Subcategory(
        "SWEATERS", "SWEATERS", "top", ("sweater", "pullover", "jumper"), _BOTH, _KNIT,
        {"sleeves": _a("long"), "neckline": _a("crew|v-neck|turtleneck"), "pattern": _a("stripes|chevron", 0.3),
         "front_print": _a("appliqué|logo", 0.2)},
        {"shoulder": 62, "hem_half": 56},
    ),
    Subcategory(
        "DAY DRESSES", "DRESSES", "dress", ("dress", "day dress"), ("WOMEN",), _DRESS_MATERIALS,
        {"sleeves": _a("sleeveless|short|three-quarter|long"), "neckline": _a("crew|v-neck|scoop", 0.9),
         "length": _a("mini|knee|midi|maxi"), "back_detail": _a("zip|bow|cut-out|lace-up", 0.6),
         "pockets": _a("patch", 0.25), "pattern": _PATTERN},
    ),
    Subcategory(
        "JEANS", "JEANS", "pants", ("jeans",), _BOTH, ("denim", "stretch denim", "selvedge denim"),
        {"length": _a("cropped|full|full"), "pockets": _a("slant"), "closure": _a("fly"),
         "back_detail": _a("back pockets", 0.8)},
        colours=_JEANS_COLOURS,
    ),
    Subcategory(
        "JACKETS", "JACKETS & COATS", "jacket", ("jacket", "bomber jacket"), _BOTH,
        ("nylon", "cotton twill", "leather", "suede"),
        {"sleeves": _a("long"), "neckline": _a("stand collar|notch lapels"), "closure": _a("zip|buttons"),
         "pockets": _a("flap|patch", 0.7), "back_detail": _a("half-belt|vent", 0.3),
         "front_print": _a("logo", 0.1)},
    ),
    Subcategory(
        "TANK TOPS", "TOPS", "top", ("tank top", "camisole"), ("WOMEN", "MEN", "WOMEN"), _TOP_MATERIALS,
        {"sleeves": _a("sleeveless"), "neckline": _a("scoop|v-neck"), "front_print": _a("graphic|logo", 0.3),
         "back_detail": _a("cut-out|lace-up|bow", 0.35), "pattern": _PATTERN, "length": _a("cropped", 0.2)},
        {"shoulder": 44, "neck": 20},
    ),
    Subcategory(
        "TROUSERS", "PANTS", "pants", ("trousers", "pants"), _BOTH, ("wool", "cotton twill", "linen", "crêpe"),
        {"length": _a("cropped|full"), "pockets": _a("slant", 0.8), "closure": _a("fly"),
         "back_detail": _a("back pockets", 0.5), "pattern": _a("checks|stripes", 0.2)},
    ),
    Subcategory(
        "MIDI SKIRTS", "SKIRTS", "skirt", ("skirt", "a-line skirt"), ("WOMEN",), _DRESS_MATERIALS,
        {"length": _a("knee|midi|maxi"), "back_detail": _a("zip|bow", 0.6), "pockets": _a("slant", 0.3),
         "closure": _a("buttons", 0.2), "pattern": _PATTERN},
    ),
    Subcategory(
        "BLOUSES", "TOPS", "top", ("blouse",), ("WOMEN",), ("silk", "crêpe", "viscose", "chiffon"),
        {"sleeves": _a("sleeveless|short|three-quarter|long"), "neckline": _a("v-neck|scoop|point collar"),
         "back_detail": _a("bow|cut-out|lace-up|zip", 0.5), "closure": _a("buttons", 0.4), "pattern": _PATTERN},
        {"shoulder": 54},
    ),
    Subcategory(
        "COATS", "JACKETS & COATS", "jacket", ("coat", "overcoat"), _BOTH, ("wool", "cashmere", "tweed"),
        {"sleeves": _a("long"), "neckline": _a("notch lapels|stand collar"), "closure": _a("buttons|zip"),
         "pockets": _a("flap", 0.8), "back_detail": _a("vent|half-belt", 0.5), "pattern": _a("checks", 0.15)},
        {"hem": 232, "hem_half": 60},
    ),
    Subcategory(
        "SWEATSHIRTS", "SWEATERS", "top", ("sweatshirt",), _BOTH, ("cotton fleece", "french terry"),
        {"sleeves": _a("long"), "neckline": _a("crew"), "front_print": _a("logo|graphic|slogan", 0.7),
         "pockets": _a("kangaroo", 0.4)},
        {"shoulder": 62, "hem_half": 56},
    ),
    Subcategory(
        "TOTE BAGS", "BAGS", "bag", ("tote", "tote bag"), _BOTH, ("canvas", "leather", "grained leather"),
        {"pockets": _a("front", 0.5), "front_print": _a("logo", 0.5), "back_detail": _a("back pockets", 0.4),
         "pattern": _a("stripes|checks", 0.2)},
        department="BAGS",
    ),
    Subcategory(
        "SHIRT DRESSES", "DRESSES", "dress", ("shirt dress",), ("WOMEN",), ("cotton", "poplin", "linen"),
        {"sleeves": _a("short|long|three-quarter"), "neckline": _a("point collar|spread collar"),
         "closure": _a("buttons"), "length": _a("knee|midi|maxi"), "pockets": _a("patch|chest", 0.5),
         "pattern": _a("stripes|checks", 0.4)},
    ),
    Subcategory(
        "SHORTS", "SHORTS", "pants", ("shorts",), _BOTH, ("cotton twill", "denim", "linen"),
        {"pockets": _a("slant", 0.8), "closure": _a("fly", 0.8), "back_detail": _a("back pockets", 0.5),
         "pattern": _a("checks|stripes", 0.25)},
        {"hem": 132},
    ),
    Subcategory(
        "CARDIGANS", "SWEATERS", "jacket", ("cardigan",), _BOTH, _KNIT,
        {"sleeves": _a("long"), "neckline": _a("v-neck|crew"), "closure": _a("buttons"),
         "pockets": _a("patch", 0.5), "pattern": _a("stripes", 0.2)},
        {"hem": 196},
    ),
    Subcategory(
        "EVENING DRESSES", "DRESSES", "dress", ("gown", "evening dress"), ("WOMEN",),
        ("satin", "silk", "crêpe", "velvet"),
        {"sleeves": _a("sleeveless|long"), "neckline": _a("v-neck|scoop"), "length": _a("midi|maxi|maxi"),
         "back_detail": _a("cut-out|lace-up|bow|zip", 0.8)},
    ),
    Subcategory(
        "BLAZERS", "JACKETS & COATS", "jacket", ("blazer",), _BOTH, ("wool", "linen", "tweed", "velvet"),
        {"sleeves": _a("long"), "neckline": _a("notch lapels"), "closure": _a("buttons"),
         "pockets": _a("flap", 0.9), "back_detail": _a("vent", 0.6), "pattern": _a("checks|stripes", 0.3)},
    ),
    Subcategory(
        "POLOS", "SHIRTS", "top", ("polo", "polo shirt"), ("MEN", "MEN", "WOMEN"), ("cotton piqué", "cotton"),
        {"sleeves": _a("short|long"), "neckline": _a("point collar"), "closure": _a("buttons"),
         "front_print": _a("logo", 0.5), "pattern": _a("stripes", 0.3)},
    ),
    Subcategory(
        "MINI SKIRTS", "SKIRTS", "skirt", ("miniskirt", "skirt"), ("WOMEN",), ("leather", "denim", "tweed", "crêpe"),
        {"length": _a("mini"), "back_detail": _a("zip", 0.5), "pockets": _a("slant", 0.3),
         "closure": _a("buttons", 0.3), "pattern": _a("checks|dots", 0.3)},
    ),
    Subcategory(
        "BACKPACKS", "BAGS", "bag", ("backpack",), _BOTH, ("nylon", "canvas", "leather"),
        {"pockets": _a("front", 0.9), "front_print": _a("logo", 0.4), "back_detail": _a("back pockets", 0.5)},
        {"bag_top": 78, "bag_half": 52},
        department="BAGS",
    ),
    Subcategory(
        "PLEATED SKIRTS", "SKIRTS", "skirt", ("pleated skirt",), ("WOMEN",), ("crêpe", "satin", "wool"),
        {"length": _a("mini|knee|midi"), "back_detail": _a("zip", 0.4), "pattern": _a("checks|stripes", 0.25)},
        {"pleats": 1.0},
    ),
    Subcategory(
        "SHOULDER BAGS", "BAGS", "bag", ("shoulder bag",), ("WOMEN", "MEN", "WOMEN"), ("leather", "suede"),
        {"pockets": _a("front", 0.4), "front_print": _a("logo", 0.5), "back_detail": _a("back pockets", 0.3)},
        {"bag_top": 120, "bag_half": 64},
        department="BAGS",
    ),
)
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(s.category for s in SUBCATEGORIES))
SUBCATEGORY_BY_NAME: dict[str, Subcategory] = {s.name: s for s in SUBCATEGORIES}

#: FashionIQ category -> the subcategories its products come from.
FASHIONIQ_SOURCES: dict[str, tuple[str, ...]] = {
    "dress": ("DAY DRESSES", "EVENING DRESSES"),
    "shirt": ("SHIRTS", "POLOS"),
    "toptee": ("T-SHIRTS", "TANK TOPS", "BLOUSES"),
}

BRANDS: tuple[str, ...] = (
    "Acne Studios", "Maison Lévêque", "Atelier Noël", "Norse Projects", "A.P.C.", "Our Legacy",
    "Sørensen", "Études", "Kenzo", "Ganni", "Wood Wood", "Carhartt WIP", "Ami Alexandre Mattiussi",
    "Isabel Marant Étoile", "Stüssy", "Tibi", "Filippa K", "Nanushka", "Jil Sander", "Séraphine",
    "Helmut Lang", "Loewe", "Rag & Bone", "Thom Browne", "Ader Error", "Nørgaard", "Maison Kitsuné",
    "Marni", "Coperni", "Molly Goddard", "Ami Paris", "Universal Works", "Sunnei", "Baserange",
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
    "TOPS": 140.0, "SHIRTS": 210.0, "SWEATERS": 320.0, "DRESSES": 560.0, "JEANS": 240.0,
    "PANTS": 330.0, "JACKETS & COATS": 890.0, "SKIRTS": 380.0, "SHORTS": 190.0, "BAGS": 720.0,
}
