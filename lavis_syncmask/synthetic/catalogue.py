"""Sampling of the synthetic catalogue (benchmarks-and-data.md, "The synthetic fashion set"):
products (subcategory with Zipf-like sizes, visual attributes, colour, FashionGen-like
metadata, description and name), near-duplicate products that copy another's text, and the 1
to 6 views of each product (front / back / side / detail crop, with pose and background jitter).

Every function draws from an explicit ``numpy.random.Generator``; rendering is a pure
function of a :class:`Product` and a :class:`~geometry.ViewSpec` (render.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lavis_syncmask.synthetic.garments import draw_garment, shape_of
from lavis_syncmask.synthetic.geometry import CENTRE, ViewSpec, apply
from lavis_syncmask.synthetic.subcategories import SUBCATEGORIES
from lavis_syncmask.synthetic.taxonomy import (
    BRANDS,
    COLOURS,
    COMPOSITIONS,
    MSRP_MEDIAN,
    SEASONS,
    Subcategory,
)
from lavis_syncmask.synthetic.text import TaggedText, describe, product_name

#: P(number of views = 1..6); about 3.5 views per product, as in FashionGen.
VIEW_COUNT_P = (0.06, 0.14, 0.26, 0.28, 0.16, 0.10)
#: The views after the first (front), in the order a product shows them.
EXTRA_POSES = ("back", "side", "detail", "detail", "side")
N_TEXTURES = 8
DETAIL_BACK_SHARE = 0.3  # detail crops of the back (zip, bow, ...) rather than the front
#: Share of products added as near-duplicates (a copy of another product's text and look).
DUPLICATE_FRACTION = 0.04
#: Attributes that only one side of a garment shows: a text naming them describes something
#: the other views cannot see. `invisible_boost` raises how often products have them.
VIEW_LIMITED_ATTRIBUTES = frozenset({"back_detail", "front_print"})


@dataclass(frozen=True)
class Product:
    """One catalogue item. ``attributes`` maps each attribute the product has to its value:
    ``category`` -> the garment noun, ``colour`` -> a key of ``COLOURS``, others as in the
    subcategory's table."""

    product_id: int
    subcategory: Subcategory
    attributes: Mapping[str, str]
    rgb: tuple[int, int, int]
    pattern_phase: tuple[float, float]
    stretch: tuple[float, float]  # (width, height) factors of the garment
    material: str
    gender: str
    brand: str
    season: str
    msrp: float
    description: TaggedText
    name: TaggedText
    duplicate_of: int | None = None  # product id whose text (and look) this one copies

    @property
    def composition(self) -> str:
        return COMPOSITIONS.get(self.material, f"100% {self.material}")

    @property
    def shape(self) -> dict[str, float]:
        return shape_of(self.subcategory.kind, self.subcategory.shape)


def subcategory_weights(subcategories: Sequence[Subcategory] = SUBCATEGORIES) -> np.ndarray:
    """``(S,)`` sampling probabilities: Zipf-like, the subcategory of global frequency rank i
    (its place in ``SUBCATEGORIES``) weighted 1 / (i+1)^0.8."""
    rank = np.array([SUBCATEGORIES.index(s) for s in subcategories], dtype=np.float64)
    weights = 1.0 / (rank + 1.0) ** 0.8
    return weights / weights.sum()


def sample_attributes(
    sub: Subcategory, rng: np.random.Generator, invisible_boost: float = 0.0
) -> dict[str, str]:
    """Attribute values of a new product of ``sub`` (garment noun and colour included).

    ``invisible_boost`` in [0, 1] moves the presence ``p`` of each view-limited attribute
    (``VIEW_LIMITED_ATTRIBUTES``) to ``p + invisible_boost * (1 - p)``: more of each text names
    what some views do not show. 0 keeps the draws, so the catalogue, byte for byte.
    """
    if not 0.0 <= invisible_boost <= 1.0:
        raise ValueError(f"invisible_boost must be in [0, 1], got {invisible_boost}")
    attrs = {
        "category": sub.nouns[int(rng.integers(len(sub.nouns)))],
        "colour": sub.colours[int(rng.integers(len(sub.colours)))],
    }
    for name, spec in sub.attributes.items():
        presence = spec.presence
        if name in VIEW_LIMITED_ATTRIBUTES:
            presence += invisible_boost * (1.0 - presence)
        if rng.random() < presence:
            attrs[name] = spec.values[int(rng.integers(len(spec.values)))]
    return attrs


def make_product(
    sub: Subcategory,
    attrs: Mapping[str, str],
    product_id: int,
    rng: np.random.Generator,
) -> Product:
    """A product of ``sub`` with the given attribute values; the rest (exact colour, metadata,
    text) is drawn from ``rng``."""
    base = np.asarray(COLOURS[attrs["colour"]][0])
    rgb = tuple(int(c) for c in np.clip(base + rng.integers(-6, 7, size=3), 0, 255))
    material = sub.materials[int(rng.integers(len(sub.materials)))]
    median = MSRP_MEDIAN[sub.category]
    return Product(
        product_id=int(product_id),
        subcategory=sub,
        attributes=dict(attrs),
        rgb=rgb,  # type: ignore[arg-type]
        pattern_phase=(float(rng.uniform(0, 32)), float(rng.uniform(0, 32))),
        stretch=(float(rng.uniform(0.94, 1.06)), float(rng.uniform(0.96, 1.04))),
        material=material,
        gender=sub.genders[int(rng.integers(len(sub.genders)))],
        brand=BRANDS[int(rng.integers(len(BRANDS)))],
        season=SEASONS[int(rng.integers(len(SEASONS)))],
        msrp=float(np.float32(round(median * math.exp(rng.normal(0.0, 0.45))))),
        description=describe(sub.kind, attrs, material, rng),
        name=product_name(attrs, material, rng),
    )


def sample_product(
    rng: np.random.Generator,
    product_id: int,
    subcategory: Subcategory | None = None,
    among: Sequence[Subcategory] = SUBCATEGORIES,
    invisible_boost: float = 0.0,
) -> Product:
    """A random product of ``subcategory`` when given, else of a Zipf-weighted choice among
    ``among`` (kept in the global frequency order); ``invisible_boost`` as in
    :func:`sample_attributes`."""
    if subcategory is None:
        if not among:
            raise ValueError("`among` must name at least one subcategory")
        subcategory = among[int(rng.choice(len(among), p=subcategory_weights(among)))]
    attrs = sample_attributes(subcategory, rng, invisible_boost)
    return make_product(subcategory, attrs, product_id, rng)


def sample_products(
    product_ids: Sequence[int],
    rng: np.random.Generator,
    duplicate_fraction: float = DUPLICATE_FRACTION,
    among: Sequence[Subcategory] = SUBCATEGORIES,
    invisible_boost: float = 0.0,
) -> list[Product]:
    """One product per id, of the subcategories ``among``. ``ceil(duplicate_fraction * n)`` of
    them (at most half) copy the text, attributes and look of another product (near-duplicates:
    false negatives for contrastive losses); they sit at random places in the list."""
    n = len(product_ids)
    if not 0.0 <= duplicate_fraction < 0.5:
        raise ValueError(f"duplicate_fraction must be in [0, 0.5), got {duplicate_fraction}")
    copies = min(math.ceil(duplicate_fraction * n), n // 2) if n >= 2 else 0
    originals = [
        sample_product(rng, 0, among=among, invisible_boost=invisible_boost)
        for _ in range(n - copies)
    ]
    sources = rng.choice(len(originals), size=copies, replace=False) if copies else []
    order = rng.permutation(n)  # slot of the i-th product (originals first, then copies)
    products: list[Product | None] = [None] * n
    for i, product in enumerate(originals):
        products[order[i]] = replace(product, product_id=int(product_ids[order[i]]))
    for j, source in enumerate(sources):
        slot, original = order[len(originals) + j], products[order[int(source)]]
        assert original is not None
        products[slot] = replace(
            original, product_id=int(product_ids[slot]), duplicate_of=original.product_id
        )
    return [p for p in products if p is not None]


def sample_views(product: Product, rng: np.random.Generator) -> list[ViewSpec]:
    """The 1 to 6 views of ``product``: always the front first, then back / side / detail
    crops in that order, each with its own jitter and background."""
    count = int(rng.choice(len(VIEW_COUNT_P), p=VIEW_COUNT_P)) + 1
    picked = sorted(rng.choice(len(EXTRA_POSES), size=count - 1, replace=False).tolist())
    poses = ["front"] + sorted(
        (EXTRA_POSES[i] for i in picked), key=("back", "side", "detail").index
    )
    return [sample_view(product, pose, rng) for pose in poses]


def sample_view(
    product: Product, pose: str, rng: np.random.Generator, *, plain: bool = False
) -> ViewSpec:
    """One view of ``product`` in ``pose``; ``plain`` gives a near-white, untextured backdrop
    (FashionIQ-style product shots)."""
    grey = float(rng.uniform(236, 252) if plain else rng.uniform(214, 250))
    tint = rng.uniform(-3, 3, size=3) if plain else rng.uniform(-8, 8, size=3)
    background = tuple(int(c) for c in np.clip(np.rint(grey + tint), 0, 255))
    spec = dict(
        pose=pose,
        dx=float(rng.uniform(-10, 10)),
        dy=float(rng.uniform(-8, 8)),
        scale=float(rng.uniform(0.92, 1.06)),
        angle=float(rng.uniform(-4, 4)),
        mirror=bool(pose == "side" and rng.random() < 0.5),
        texture=0 if plain else int(rng.integers(N_TEXTURES)),
        background=background,
        texture_amplitude=int(rng.integers(1, 4) if plain else rng.integers(2, 11)),
    )
    if pose == "detail":
        face = "back" if rng.random() < DETAIL_BACK_SHARE else "front"
        anchors = draw_garment(
            product.subcategory.kind, product.shape, product.attributes, face
        ).anchors
        keys = sorted(anchors)
        x, y = anchors[keys[int(rng.integers(len(keys)))]]
        focus = apply(stretch_matrix(product.stretch), np.array([[x, y]]))[0] + rng.uniform(
            -6, 6, 2
        )
        spec.update(
            zoom=float(rng.uniform(2.4, 3.6)),
            focus=(float(focus[0]), float(focus[1])),
            angle=float(rng.uniform(-2, 2)),
            detail_face=face,
        )
    return ViewSpec(**spec)  # type: ignore[arg-type]


def stretch_matrix(stretch: tuple[float, float]) -> np.ndarray:
    """``(3, 3)`` affine: the product's width / height jitter about the canvas centre."""
    sx, sy = stretch
    return np.array([[sx, 0, CENTRE * (1 - sx)], [0, sy, CENTRE * (1 - sy)], [0, 0, 1.0]])
