"""FashionIQ-format triplets of the synthetic catalogue (benchmarks-and-data.md, "FashionIQ"):
for dress / shirt / toptee, a reference garment, a target that differs from it in one or two
front-visible attributes, and two captions describing that change, written in the release
layout (captions/, image_splits/, images/). ``attributes.json`` (not part of the real release)
records every image's attributes so tests can check the triplets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from lavis_syncmask.data.synthetic.catalogue import Garment, ViewSpec, sample_garment
from lavis_syncmask.data.synthetic.render import render_view
from lavis_syncmask.data.synthetic.taxonomy import (
    LENGTH_BOTTOM,
    PALETTE,
    PATTERNS,
    SUBCATEGORY_BY_NAME,
)

ImageFormat = Literal["png", "jpg"]
SPLITS = ("train", "val", "test")
FASHIONIQ_SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "dress": ("DAY DRESSES", "EVENING DRESSES", "SHIRT DRESSES"),
    "shirt": ("SHIRTS", "POLOS"),
    "toptee": ("T-SHIRTS", "TANK TOPS", "BLOUSES"),
}
#: Attributes a caption may change: those a front image shows.
CHANGEABLE = ("colour", "pattern", "sleeve", "neckline", "length", "print", "pockets")
#: ``(attribute, old value or None, new value or None)``.
Change = tuple[str, str | None, str | None]
_ASIN_ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_SLEEVE_RANK = {"short": 0, "elbow": 1, "long": 2}
_PATTERN_WORDS = {
    "stripes": "striped",
    "pinstripes": "pinstriped",
    "checks": "checked",
    "dots": "polka-dotted",
}
_PRINT_WORDS = {
    "graphic": "a graphic print",
    "logo": "a logo print",
    "appliqué": "an appliqué",
    "naïve": "a naïve print",
}


def _options(garment: Garment, attribute: str) -> list[str | None]:
    """Values ``attribute`` may change to (None = remove) for this garment's subcategory."""
    sub, current = garment.sub, garment.attributes.get(attribute)
    if attribute == "colour":
        taken = {garment.colour, garment.pattern_colour, garment.print_colour}
        return [c for c in PALETTE if c not in taken]
    if attribute == "pattern":
        values: list[str | None] = [*PATTERNS, None]
    elif attribute in sub.required:
        values = list(sub.required[attribute])
    elif attribute in sub.optional:
        values = [*sub.optional[attribute][1], None]
    else:
        return []
    return [v for v in values if v != current]


def mutate(
    garment: Garment, changes: int, rng: np.random.Generator
) -> tuple[Garment, list[Change]]:
    """A copy of ``garment`` with ``changes`` (1 or 2) attributes changed, and the changes."""
    candidates = [a for a in CHANGEABLE if _options(garment, a)]
    picked = rng.choice(len(candidates), size=min(changes, len(candidates)), replace=False)
    attributes, colour, made = dict(garment.attributes), garment.colour, []
    for index in sorted(picked.tolist()):
        attribute = candidates[index]
        options = _options(garment, attribute)
        new = options[int(rng.integers(len(options)))]
        made.append((attribute, garment.attributes.get(attribute), new))
        if new is None:
            del attributes[attribute]
        else:
            attributes[attribute] = new
        if attribute == "colour":
            colour = str(new)
    return replace(garment.with_attributes(attributes), colour=colour), made


def _phrase(change: Change, style: int, shape: str) -> str:
    """One caption fragment, e.g. ``"is red instead of navy"`` (style 0) or ``"red"``."""
    attribute, old, new = change
    if attribute == "colour":
        return (f"is {new} instead of {old}", f"{new} colored")[style]
    if attribute == "pattern":
        if new is None:
            return ("is solid with no pattern", "plain")[style]
        return (f"is {_PATTERN_WORDS[new]}", f"has {new}")[style]
    if attribute == "sleeve":
        if new is None:
            return ("is sleeveless", "has no sleeves")[style]
        longer = old is None or _SLEEVE_RANK[new] > _SLEEVE_RANK[old]
        return (f"has {new} sleeves", "has longer sleeves" if longer else "has shorter sleeves")[
            style
        ]
    if attribute == "neckline":
        return (f"has a {new} neckline", f"{new} neck")[style] if new else "has a high neck"
    if attribute == "length":
        order = list(LENGTH_BOTTOM[shape])
        longer = order.index(str(new)) > order.index(str(old))
        return (f"is {new} length", "is longer" if longer else "is shorter")[style]
    if attribute == "print":
        if new is None:
            return ("has no print", "plain front without graphic")[style]
        return (f"has {_PRINT_WORDS[new]}", "has a print on the front")[style]
    if attribute == "pockets":
        return (f"has {new} pockets", "has pockets")[style] if new else "has no pockets"
    raise ValueError(f"no caption for attribute {attribute!r}")


def captions(changes: Sequence[Change], shape: str, rng: np.random.Generator) -> list[str]:
    """Two captions describing ``changes``, phrased differently (as two annotators would)."""
    first = " and ".join(_phrase(c, 0, shape) for c in changes)
    order = list(changes)[::-1] if rng.random() < 0.5 else list(changes)
    return [first, " and ".join(_phrase(c, 1, shape) for c in order)]


def make_asins(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct ASIN-like ids, ``"B00"`` + 7 characters of ``[0-9A-Z]``."""
    asins: list[str] = []
    seen: set[str] = set()
    while len(asins) < count:
        asin = "B00" + "".join(rng.choice(_ASIN_ALPHABET, size=7).tolist())
        if asin not in seen:
            seen.add(asin)
            asins.append(asin)
    return asins


def split_sizes(triplets_per_category: int) -> dict[str, int]:
    """Triplets per category in each split: train K, val 40 % of K, test 20 % of K."""
    if triplets_per_category < 1:
        raise ValueError(f"triplets_per_category must be >= 1, got {triplets_per_category}")
    k = triplets_per_category
    return {"train": k, "val": max(1, round(0.4 * k)), "test": max(1, round(0.2 * k))}


def _new_garment(category: str, rng: np.random.Generator) -> Garment:
    names = FASHIONIQ_SUBCATEGORIES[category]
    return sample_garment(SUBCATEGORY_BY_NAME[names[int(rng.integers(len(names)))]], rng)


def build_split(
    category: str, count: int, rng: np.random.Generator
) -> tuple[list[Garment], list[tuple[int, int, list[str]]]]:
    """The image pool of one category / split and ``count`` triplets ``(reference index,
    target index, captions)`` into it; some references are reused, and a quarter as many
    extra images as triplets join the pool as distractors (the ``original`` gallery)."""
    pool: list[Garment] = []
    triplets: list[tuple[int, int, list[str]]] = []
    for _ in range(count):
        if pool and rng.random() < 0.3:
            reference = int(rng.integers(len(pool)))
        else:
            pool.append(_new_garment(category, rng))
            reference = len(pool) - 1
        target, changes = mutate(pool[reference], 1 + int(rng.random() < 0.4), rng)
        pool.append(target)
        shape = pool[reference].sub.shape
        triplets.append((reference, len(pool) - 1, captions(changes, shape, rng)))
    pool.extend(_new_garment(category, rng) for _ in range(max(1, count // 4)))
    return pool, triplets


def _front_view(rng: np.random.Generator) -> ViewSpec:
    return ViewSpec(
        kind="front",
        pose="front",
        centre_y=128.0 + float(rng.uniform(-6, 6)),
        centre_x=128.0 + float(rng.uniform(-6, 6)),
        scale=float(rng.uniform(0.92, 1.04)),
        facing=1,
        bg_seed=int(rng.integers(2**31)),
    )


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def write_fashioniq(
    root: str | os.PathLike[str],
    triplets_per_category: int,
    rng: np.random.Generator,
    image_format: ImageFormat = "png",
    on_images: Callable[[int], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Write the FashionIQ tree under ``root``; returns triplets per category and split.
    Images are 256x256 ``.png`` (or ``.jpg``), one per ASIN."""
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    sizes = split_sizes(triplets_per_category)
    built = {
        (category, split): build_split(category, sizes[split], rng)
        for category in FASHIONIQ_SUBCATEGORIES
        for split in SPLITS
    }
    asins = iter(make_asins(sum(len(pool) for pool, _ in built.values()), rng))
    out = Path(root)
    for folder in ("captions", "image_splits", "images"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    attributes: dict[str, dict[str, object]] = {}
    counts: dict[str, dict[str, int]] = {c: {} for c in FASHIONIQ_SUBCATEGORIES}
    for (category, split), (pool, triplets) in built.items():
        ids = [next(asins) for _ in pool]
        entries = []
        for reference, target, texts in triplets:
            entry = {"candidate": ids[reference], "target": ids[target], "captions": texts}
            if split == "test":  # the real test split hides its targets
                del entry["target"]
            entries.append(entry)
        _write_json(out / "captions" / f"cap.{category}.{split}.json", entries)
        _write_json(out / "image_splits" / f"split.{category}.{split}.json", ids)
        for asin, garment in zip(ids, pool):
            image = Image.fromarray(render_view(garment, _front_view(rng)))
            if image_format == "png":
                image.save(out / "images" / f"{asin}.png", compress_level=1)
            else:
                image.save(out / "images" / f"{asin}.jpg", quality=92)
            attributes[asin] = {
                "category": category,
                "split": split,
                "subcategory": garment.subcategory,
                "attributes": dict(garment.attributes),
            }
        if on_images is not None:
            on_images(len(pool))
        counts[category][split] = len(triplets)
    _write_json(out / "attributes.json", attributes)
    return counts
