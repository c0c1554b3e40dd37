"""Sampling of the synthetic catalogue (benchmarks-and-data.md, "The synthetic fashion set"):
garments (subcategory + visual attributes), their views (front / back / side / detail with
pose and background jitter), FashionGen-like metadata, text, and near-duplicate products.

Everything random is drawn from an explicit ``numpy.random.Generator``; rendering itself is a
pure function of a :class:`Garment` and a :class:`ViewSpec` (render.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from lavis_syncmask.data.synthetic.taxonomy import (
    BLEND_FIBRES,
    BRANDS,
    DEPARTMENT,
    LENGTH_BOTTOM,
    PALETTE,
    PATTERN_PROBABILITY,
    PATTERNS,
    SEASONS,
    SUBCATEGORIES,
    SUBCATEGORY_BY_NAME,
    Subcategory,
    ViewKind,
)
from lavis_syncmask.data.synthetic.text import ProductText, make_text

#: Probability of 1..6 views per product (FashionGen averages about 3.8 views).
VIEW_COUNT_WEIGHTS = np.array([0.06, 0.12, 0.2, 0.3, 0.16, 0.16])
#: View kinds of a product with n views are the first n of this list (pose suffix for repeats).
VIEW_ORDER: tuple[ViewKind, ...] = ("front", "back", "side", "detail", "side", "detail")
#: Share of products that copy the text (and garment) of an earlier product.
NEAR_DUPLICATE_SHARE = 0.07
ZIPF_EXPONENT = 1.1


@dataclass(frozen=True)
class Garment:
    """What a product looks like: subcategory and visual attribute values (absent = none)."""

    subcategory: str
    attributes: Mapping[str, str]
    colour: str
    pattern_colour: str
    print_colour: str

    @property
    def sub(self) -> Subcategory:
        return SUBCATEGORY_BY_NAME[self.subcategory]

    def with_attributes(self, attributes: Mapping[str, str]) -> Garment:
        return replace(self, attributes=MappingProxyType(dict(attributes)))


@dataclass(frozen=True)
class ViewSpec:
    """One rendered view: kind, pose string, where the 256 px image centre falls in the
    garment frame, the zoom, which way a side view faces and the background seed."""

    kind: ViewKind
    pose: str
    centre_y: float
    centre_x: float
    scale: float
    facing: int
    bg_seed: int


@dataclass(frozen=True)
class Product:
    """A catalogue product: garment, views, metadata and its (shared) text."""

    product_id: int
    garment: Garment
    views: tuple[ViewSpec, ...]
    text: ProductText
    brand: str
    composition: str
    gender: str
    season: str
    msrp: float
    duplicate_of: int | None = None

    @property
    def category(self) -> str:
        return self.garment.sub.category


def zipf_weights(n: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    """``(n,)`` probabilities proportional to ``1 / rank ** exponent``."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def sample_garment(sub: Subcategory, rng: np.random.Generator) -> Garment:
    """A garment of ``sub`` with its required attributes and a random subset of optional
    ones; the pattern / print colours always differ from the garment colour."""
    names = list(PALETTE)
    colour = names[int(rng.integers(len(names)))]
    others = [n for n in names if n != colour]
    pattern_colour = others[int(rng.integers(len(others)))]
    print_colour = others[int(rng.integers(len(others)))]
    if print_colour == pattern_colour:  # a print must stand out from both layers under it
        print_colour = next(n for n in others if n != pattern_colour)
    attributes = {"category": sub.noun, "colour": colour}
    if rng.random() < PATTERN_PROBABILITY:
        attributes["pattern"] = PATTERNS[int(rng.integers(len(PATTERNS)))]
    for name, choices in sub.required.items():
        attributes[name] = choices[int(rng.integers(len(choices)))]
    for name, (probability, choices) in sub.optional.items():
        if rng.random() < probability:
            attributes[name] = choices[int(rng.integers(len(choices)))]
    return Garment(sub.name, MappingProxyType(attributes), colour, pattern_colour, print_colour)


def _focus_points(garment: Garment) -> list[tuple[float, float]]:
    """Garment-frame (y, x) points a detail crop may zoom on."""
    shape, attrs = garment.sub.shape, garment.attributes
    points = [(110.0, 128.0)]
    if "neckline" in attrs:
        points.append((70.0, 128.0))
    if "pockets" in attrs:
        points.append((150.0, 108.0) if shape != "pants" else (94.0, 104.0))
    if "length" in attrs:
        points.append((float(LENGTH_BOTTOM[shape][attrs["length"]] - 24), 128.0))
    if "sleeve" in attrs:
        points.append((90.0, 70.0))
    return points


def sample_views(garment: Garment, count: int, rng: np.random.Generator) -> tuple[ViewSpec, ...]:
    """``count`` views (1..6): front first, then back, side, detail, other side, detail."""
    if not 1 <= count <= len(VIEW_ORDER):
        raise ValueError(f"a product has 1..{len(VIEW_ORDER)} views, got {count}")
    views, seen = [], {k: 0 for k in set(VIEW_ORDER)}
    for kind in VIEW_ORDER[:count]:
        seen[kind] += 1
        pose = kind if seen[kind] == 1 else f"{kind}_{seen[kind]}"
        if kind == "detail":
            points = _focus_points(garment)
            cy, cx = points[int(rng.integers(len(points)))]
            scale = float(rng.uniform(3.0, 4.0))
        else:
            cy, cx, scale = 128.0, 128.0, float(rng.uniform(0.9, 1.05))
        views.append(
            ViewSpec(
                kind=kind,
                pose=pose,
                centre_y=cy + float(rng.uniform(-10, 10)),
                centre_x=cx + float(rng.uniform(-10, 10)),
                scale=scale,
                facing=1 if seen[kind] == 1 else -1,
                bg_seed=int(rng.integers(2**31)),
            )
        )
    return tuple(views)


def _composition(material: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return f"100% {material}"
    blend = int(rng.integers(2, 31))
    return (
        f"{100 - blend}% {material}, {blend}% {BLEND_FIBRES[int(rng.integers(len(BLEND_FIBRES)))]}"
    )


def sample_product(
    product_id: int, sub: Subcategory, rng: np.random.Generator, views: int | None = None
) -> Product:
    """One fresh product of subcategory ``sub`` (``views`` None: drawn from the 1..6 weights)."""
    garment = sample_garment(sub, rng)
    count = views if views is not None else int(rng.choice(6, p=VIEW_COUNT_WEIGHTS)) + 1
    material = sub.materials[int(rng.integers(len(sub.materials)))]
    return Product(
        product_id=product_id,
        garment=garment,
        views=sample_views(garment, count, rng),
        text=make_text(garment, material, rng),
        brand=BRANDS[int(rng.integers(len(BRANDS)))],
        composition=_composition(material, rng),
        gender=sub.gender[int(rng.integers(len(sub.gender)))],
        season=SEASONS[int(rng.integers(len(SEASONS)))],
        msrp=float(np.round(np.exp(rng.normal(5.6, 0.8)) / 5.0) * 5.0 + 5.0),
    )


def near_duplicate(source: Product, product_id: int, rng: np.random.Generator) -> Product:
    """A different product with the same text and garment but its own views (so its images
    differ slightly in pose and background): a false negative for contrastive learning."""
    count = int(rng.choice(6, p=VIEW_COUNT_WEIGHTS)) + 1
    return replace(
        source,
        product_id=product_id,
        views=sample_views(source.garment, count, rng),
        msrp=source.msrp,
        duplicate_of=source.product_id,
    )


def draw_product_ids(count: int, rng: np.random.Generator) -> np.ndarray:
    """``(count,)`` distinct six-digit product ids in random order."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return rng.choice(900_000, size=count, replace=False).astype(np.int64) + 100_000


def build_products(
    product_ids: Sequence[int],
    rng: np.random.Generator,
    allowed_subcategories: Sequence[str] | None = None,
) -> list[Product]:
    """Products with Zipf-distributed subcategories (restricted to ``allowed_subcategories``
    when given, so a validation split never holds a label train lacks) and about
    ``NEAR_DUPLICATE_SHARE`` near-duplicates of earlier products."""
    subs = [
        s for s in SUBCATEGORIES if allowed_subcategories is None or s.name in allowed_subcategories
    ]
    if not subs:
        raise ValueError(f"no known subcategory among {allowed_subcategories!r}")
    weights = zipf_weights(len(SUBCATEGORIES))[[SUBCATEGORIES.index(s) for s in subs]]
    weights = weights / weights.sum()
    n = len(product_ids)
    duplicates = int(np.ceil(NEAR_DUPLICATE_SHARE * n)) if n >= 4 else 0
    dup_slots = (
        set(rng.choice(np.arange(1, n), size=duplicates, replace=False).tolist())
        if duplicates
        else set()
    )
    products: list[Product] = []
    for position, pid in enumerate(product_ids):
        if position in dup_slots:
            source = products[int(rng.integers(len(products)))]
            products.append(near_duplicate(source, int(pid), rng))
        else:
            sub = subs[int(rng.choice(len(subs), p=weights))]
            products.append(sample_product(int(pid), sub, rng))
    return products


def metadata_row(product: Product) -> dict[str, str]:
    """The FashionGen string columns of every row of ``product`` (pose excluded)."""
    sub = product.garment.sub
    return {
        "input_description": product.text.description,
        "input_name": product.text.name,
        "input_category": sub.category,
        "input_subcategory": sub.name,
        "input_brand": product.brand,
        "input_composition": product.composition,
        "input_concat_description": f"{sub.category} {product.text.name} {product.text.description}",
        "input_department": DEPARTMENT,
        "input_gender": product.gender,
        "input_season": product.season,
    }
