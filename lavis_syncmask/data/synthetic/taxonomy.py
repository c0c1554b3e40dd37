"""Fixed tables of the synthetic fashion catalogue (benchmarks-and-data.md, "The synthetic
fashion set"): the category / subcategory hierarchy, which visual attributes each subcategory
can carry, their values, the colour palette and the FashionGen-like metadata vocabularies.

Colour invariant the renderer relies on (see render.py): every garment-side colour has an even
red channel and the background always an odd one, so garment and background pixels never
coincide; the palette, the neutral grey and the special colours are pairwise distinct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Shape = Literal["top", "dress", "skirt", "pants", "coat"]
ViewKind = Literal["front", "back", "side", "detail"]
VIEW_KINDS: tuple[str, ...] = ("front", "back", "side", "detail")

#: Attribute names, in the order the sidecar lists them.
ATTRIBUTES: tuple[str, ...] = (
    "category",
    "colour",
    "pattern",
    "sleeve",
    "neckline",
    "length",
    "print",
    "pockets",
    "closure",
    "back_detail",
)

PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 24),
    "white": (236, 236, 230),
    "navy": (30, 40, 84),
    "red": (190, 30, 40),
    "burgundy": (110, 20, 40),
    "pink": (236, 150, 170),
    "beige": (210, 190, 160),
    "camel": (194, 150, 96),
    "brown": (108, 70, 40),
    "café": (150, 110, 80),
    "olive": (100, 110, 50),
    "khaki": (180, 170, 120),
    "dark green": (20, 80, 50),
    "green": (50, 150, 70),
    "blue": (40, 90, 180),
    "light blue": (150, 190, 230),
    "grey": (150, 150, 150),
    "yellow": (230, 200, 40),
    "orange": (230, 120, 30),
    "purple": (110, 60, 140),
    "écru": (240, 230, 210),
}
#: What an omitted colour reverts to.
NEUTRAL = (128, 128, 128)
NECK_INNER = (58, 50, 52)
INK = (12, 12, 12)
POCKET_STITCH = (62, 62, 66)
ZIP = (176, 176, 170)
ZIP_PULL = (90, 90, 94)
BOW = (222, 210, 80)
SKIN = (224, 180, 150)
BUTTON = (234, 226, 200)

PATTERNS = ("stripes", "pinstripes", "checks", "dots")
SLEEVES = ("short", "elbow", "long")
NECKLINES = ("crew", "v-neck", "scoop", "square")
PRINTS = ("graphic", "logo", "appliqué", "naïve")
POCKETS = ("patch", "flap", "welt")
BACK_DETAILS = ("zip", "bow", "cut-out")
CLOSURES = ("buttons", "zip")

#: Garment-frame bottom edge (y, 0..255) per length value, and the neutral (omitted) edge.
LENGTH_BOTTOM: dict[str, dict[str, int]] = {
    "dress": {"mini": 172, "knee": 200, "midi": 226, "maxi": 250},
    "skirt": {"mini": 130, "knee": 170, "midi": 204, "maxi": 244},
    "pants": {"mid-thigh": 146, "knee": 176, "cropped": 214, "full": 248},
    "coat": {"hip": 184, "knee": 222, "long": 248},
}
NEUTRAL_BOTTOM: dict[str, int] = {"dress": 150, "skirt": 104, "pants": 120, "coat": 164}


@dataclass(frozen=True)
class Subcategory:
    """One subcategory: its category, garment noun, silhouette and attribute rules.

    ``required`` attributes are always present (value drawn from the given choices);
    ``optional`` ones are present with the given probability.
    """

    name: str
    category: str
    noun: str
    shape: Shape
    gender: tuple[str, ...] = ("MEN", "WOMEN")
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)
    optional: dict[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    materials: tuple[str, ...] = ("cotton",)


def _sub(name: str, category: str, noun: str, shape: Shape, **rules: object) -> Subcategory:
    return Subcategory(name, category, noun, shape, **rules)  # type: ignore[arg-type]


_WOMEN = ("WOMEN",)
_KNIT = ("wool", "cashmere", "cotton")
_WOVEN = ("cotton", "linen", "silk", "crêpe", "viscose")

#: In Zipf rank order: the first subcategory is the most frequent.
SUBCATEGORIES: tuple[Subcategory, ...] = (
    _sub(
        "T-SHIRTS",
        "TOPS",
        "t-shirt",
        "top",
        required={"sleeve": ("short", "elbow", "long"), "neckline": ("crew", "v-neck", "scoop")},
        optional={
            "print": (0.5, PRINTS),
            "pockets": (0.1, ("patch",)),
            "back_detail": (0.1, ("cut-out",)),
        },
    ),
    _sub(
        "SHIRTS",
        "SHIRTS",
        "shirt",
        "top",
        required={"closure": ("buttons",), "sleeve": ("short", "long")},
        optional={
            "pockets": (0.6, ("patch", "flap")),
            "print": (0.1, ("logo",)),
            "back_detail": (0.1, ("bow",)),
        },
        materials=_WOVEN,
    ),
    _sub(
        "SWEATERS",
        "SWEATERS",
        "sweater",
        "top",
        required={"sleeve": ("elbow", "long"), "neckline": ("crew", "v-neck")},
        optional={"print": (0.3, PRINTS)},
        materials=_KNIT,
    ),
    _sub(
        "JACKETS",
        "JACKETS & COATS",
        "jacket",
        "coat",
        required={"closure": CLOSURES, "sleeve": ("long",), "length": ("hip",)},
        optional={"pockets": (0.7, POCKETS), "back_detail": (0.2, ("zip", "bow"))},
        materials=("cotton", "wool", "nylon", "leather"),
    ),
    _sub(
        "DAY DRESSES",
        "DRESSES",
        "dress",
        "dress",
        gender=_WOMEN,
        required={"neckline": NECKLINES, "length": ("mini", "knee", "midi")},
        optional={
            "closure": (0.2, ("buttons",)),
            "sleeve": (0.7, SLEEVES),
            "pockets": (0.3, ("patch", "welt")),
            "back_detail": (0.4, BACK_DETAILS),
            "print": (0.1, ("appliqué",)),
        },
        materials=_WOVEN,
    ),
    _sub(
        "JEANS",
        "PANTS",
        "jeans",
        "pants",
        required={"length": ("cropped", "full")},
        optional={"closure": (0.5, ("buttons",)), "pockets": (0.9, ("patch", "welt"))},
        materials=("denim",),
    ),
    _sub(
        "TROUSERS",
        "PANTS",
        "trousers",
        "pants",
        required={"length": ("cropped", "full")},
        optional={"pockets": (0.6, ("welt", "flap")), "back_detail": (0.2, ("zip",))},
        materials=("wool", "cotton", "linen"),
    ),
    _sub(
        "BLOUSES",
        "TOPS",
        "blouse",
        "top",
        gender=_WOMEN,
        required={"sleeve": SLEEVES, "neckline": NECKLINES},
        optional={
            "closure": (0.4, ("buttons",)),
            "back_detail": (0.5, BACK_DETAILS),
            "print": (0.1, ("naïve",)),
        },
        materials=_WOVEN,
    ),
    _sub(
        "COATS",
        "JACKETS & COATS",
        "coat",
        "coat",
        required={"closure": ("buttons",), "sleeve": ("long",), "length": ("knee", "long")},
        optional={"pockets": (0.8, ("flap", "welt")), "back_detail": (0.2, ("bow",))},
        materials=("wool", "cashmere", "nylon"),
    ),
    _sub(
        "SHORTS",
        "SHORTS",
        "shorts",
        "pants",
        required={"length": ("mid-thigh",)},
        optional={"pockets": (0.6, ("patch", "welt")), "print": (0.2, ("logo",))},
    ),
    _sub(
        "MIDI SKIRTS",
        "SKIRTS",
        "skirt",
        "skirt",
        gender=_WOMEN,
        required={"length": ("knee", "midi")},
        optional={"pockets": (0.3, ("welt",)), "back_detail": (0.5, ("zip", "bow"))},
        materials=_WOVEN,
    ),
    _sub(
        "HOODIES",
        "SWEATERS",
        "hoodie",
        "top",
        required={"sleeve": ("long",)},
        optional={"closure": (0.4, ("zip",)), "print": (0.6, PRINTS), "pockets": (0.6, ("patch",))},
        materials=("cotton", "fleece"),
    ),
    _sub(
        "EVENING DRESSES",
        "DRESSES",
        "gown",
        "dress",
        gender=_WOMEN,
        required={"neckline": ("v-neck", "scoop", "square"), "length": ("midi", "maxi")},
        optional={"sleeve": (0.3, ("long",)), "back_detail": (0.6, BACK_DETAILS)},
        materials=("silk", "crêpe", "satin"),
    ),
    _sub(
        "POLOS",
        "SHIRTS",
        "polo",
        "top",
        gender=("MEN",),
        required={"sleeve": ("short", "long")},
        optional={
            "closure": (0.7, ("buttons",)),
            "print": (0.4, ("logo",)),
            "pockets": (0.2, ("patch",)),
        },
    ),
    _sub(
        "BLAZERS",
        "JACKETS & COATS",
        "blazer",
        "coat",
        required={"closure": ("buttons",), "sleeve": ("long",), "length": ("hip",)},
        optional={"pockets": (0.9, ("flap", "welt"))},
        materials=("wool", "linen", "velvet"),
    ),
    _sub(
        "TANK TOPS",
        "TOPS",
        "tank top",
        "top",
        required={"neckline": ("scoop", "square", "v-neck")},
        optional={"print": (0.3, ("graphic", "logo")), "back_detail": (0.2, ("cut-out", "bow"))},
    ),
    _sub(
        "MINI SKIRTS",
        "SKIRTS",
        "miniskirt",
        "skirt",
        gender=_WOMEN,
        required={"length": ("mini",)},
        optional={"pockets": (0.4, ("patch",)), "back_detail": (0.3, ("zip",))},
        materials=("denim", "leather", "cotton"),
    ),
    _sub(
        "CARDIGANS",
        "SWEATERS",
        "cardigan",
        "top",
        required={"closure": ("buttons",), "sleeve": ("long", "elbow"), "neckline": ("v-neck",)},
        optional={"pockets": (0.5, ("patch",))},
        materials=_KNIT,
    ),
    _sub(
        "SHIRT DRESSES",
        "DRESSES",
        "shirtdress",
        "dress",
        gender=_WOMEN,
        required={"closure": ("buttons",), "sleeve": ("short", "long"), "length": ("knee", "midi")},
        optional={"pockets": (0.6, ("patch", "flap"))},
        materials=("cotton", "linen"),
    ),
    _sub(
        "JOGGERS",
        "PANTS",
        "joggers",
        "pants",
        required={"length": ("full",)},
        optional={"pockets": (0.5, ("welt",)), "print": (0.2, ("logo",))},
        materials=("cotton", "fleece"),
    ),
    _sub(
        "BERMUDA SHORTS",
        "SHORTS",
        "bermudas",
        "pants",
        required={"length": ("knee",)},
        optional={"pockets": (0.7, ("patch", "flap"))},
        materials=("cotton", "linen", "denim"),
    ),
    _sub(
        "BOMBERS",
        "JACKETS & COATS",
        "bomber",
        "coat",
        required={"closure": ("zip",), "sleeve": ("long",), "length": ("hip",)},
        optional={"print": (0.3, ("graphic", "appliqué")), "pockets": (0.6, ("welt",))},
        materials=("nylon", "satin", "leather"),
    ),
    _sub(
        "PLEATED SKIRTS",
        "SKIRTS",
        "skirt",
        "skirt",
        gender=_WOMEN,
        required={"length": ("knee", "midi", "maxi")},
        optional={"back_detail": (0.4, ("zip",))},
        materials=("crêpe", "silk", "wool"),
    ),
)
SUBCATEGORY_BY_NAME: dict[str, Subcategory] = {s.name: s for s in SUBCATEGORIES}
#: Probability that a product is patterned (otherwise solid: no pattern attribute).
PATTERN_PROBABILITY = 0.45

BRANDS = (
    "Maison Élan",
    "Søren Atelier",
    "Frère & Fils",
    "Northwall",
    "Kasumi",
    "Ottavio Brera",
    "Linea Côte",
    "Hollis Grey",
    "Vantablock",
    "Mirelle",
    "Studio Ørsted",
    "Ashcombe",
    "Rue Lafitte",
    "Tanaka Works",
    "Delacroix Paris",
    "Bluefield",
    "Corso Nove",
    "Hallström",
    "Pinecrest",
    "Lumière",
    "Aldgate",
    "Novak",
    "Estrela",
    "Kinfolk Supply",
)
SEASONS = ("SS2016", "FW2016", "SS2017", "FW2017", "SS2018", "FW2018")
DEPARTMENT = "CLOTHING"
#: Fibre blended into a main material, for the composition string.
BLEND_FIBRES = ("elastane", "polyamide", "polyester", "viscose")
