"""Writer of a synthetic FashionIQ release (benchmarks-and-data.md, "FashionIQ"): for dress,
shirt and toptee, reference / target image pairs where the target differs from the reference in
one or two attributes, with two captions describing the change ("is red instead of navy",
"has long sleeves and is striped"), in the real layout::

    captions/cap.{dress,shirt,toptee}.{train,val,test}.json   (test entries have no "target")
    image_splits/split.{dress,shirt,toptee}.{train,val,test}.json
    images/<ASIN>.png   (or .jpg)
    synthetic_attributes.json   (ground truth, not in the real release: ASIN -> attributes)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from lavis_syncmask.synthetic.catalogue import (
    Product,
    make_product,
    sample_product,
    sample_view,
)
from lavis_syncmask.synthetic.render import render_image
from lavis_syncmask.synthetic.subcategories import FASHIONIQ_SOURCES, SUBCATEGORY_BY_NAME
from lavis_syncmask.synthetic.taxonomy import COLOURS

FASHIONIQ_CATEGORIES = ("dress", "shirt", "toptee")
FASHIONIQ_SPLITS = ("train", "val", "test")
ATTRIBUTES_FILE = "synthetic_attributes.json"
#: Attributes a target may change, and the order that makes sleeves / hems "longer".
CHANGEABLE = ("colour", "pattern", "sleeves", "neckline", "length", "front_print")
ORDER = {
    "sleeves": ("sleeveless", "short", "three-quarter", "long"),
    "length": ("mini", "knee", "midi", "maxi"),
}
DISTRACTOR_SHARE = 0.25  # extra gallery images per triplet, in every split file
ImageFormat = Literal["png", "jpg"]
Change = tuple[str, str | None, str | None]  # (attribute, reference value, target value)
_ASIN_CHARS = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def split_sizes(triplets: int) -> dict[str, int]:
    """Triplets per split for ``triplets`` train triplets per category (val / test: 40%)."""
    if triplets < 1:
        raise ValueError(f"fashioniq_triplets must be >= 1, got {triplets}")
    held_out = max(1, math.ceil(0.4 * triplets))
    return {"train": triplets, "val": held_out, "test": held_out}


def image_count(triplets: int) -> int:
    """Images written for ``triplets`` train triplets per category (for progress bars)."""
    per_category = sum(
        2 * n + math.ceil(DISTRACTOR_SHARE * n) for n in split_sizes(triplets).values()
    )
    return per_category * len(FASHIONIQ_CATEGORIES)


def new_asins(count: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    """``count`` unused ASIN-like ids ("B00" + 7 of 0-9A-Z); adds them to ``taken``."""
    out: list[str] = []
    while len(out) < count:
        asin = "B00" + "".join(_ASIN_CHARS[rng.integers(len(_ASIN_CHARS), size=7)])
        if asin not in taken:
            taken.add(asin)
            out.append(asin)
    return out


def _alternatives(product: Product, attribute: str) -> list[str | None]:
    sub, old = product.subcategory, product.attributes.get(attribute)
    if attribute == "colour":
        return [c for c in sub.colours if c != old]
    if attribute not in sub.attributes:
        return []
    spec = sub.attributes[attribute]
    values: list[str | None] = [v for v in dict.fromkeys(spec.values) if v != old]
    if spec.presence < 1.0:
        values += [None] if old is not None else []
    return values


def modify(product: Product, rng: np.random.Generator) -> tuple[Product, list[Change]]:
    """A target that differs from ``product`` in one or two attributes, and the changes."""
    options = [a for a in CHANGEABLE if _alternatives(product, a)]
    count = 2 if len(options) >= 2 and rng.random() < 0.4 else 1
    attrs = dict(product.attributes)
    changes: list[Change] = []
    for index in sorted(rng.choice(len(options), size=count, replace=False).tolist()):
        attribute = options[index]
        choices = _alternatives(product, attribute)
        new = choices[int(rng.integers(len(choices)))]
        changes.append((attribute, attrs.get(attribute), new))
        if new is None:
            del attrs[attribute]
        else:
            attrs[attribute] = new
    return make_product(product.subcategory, attrs, product.product_id, rng), changes


NECKLINE_WORDS = {"crew": "crew neck", "scoop": "scoop neckline", "v-neck": "v-neck"}


def _article(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _colour(name: str) -> str:
    return COLOURS[name][1][0]


def describe_change(change: Change, rng: np.random.Generator) -> str:
    """One caption phrase for one change, e.g. "is red instead of navy"."""
    attribute, old, new = change
    if attribute == "colour":
        assert new is not None and old is not None
        options = [
            f"is {_colour(new)}",
            f"is {_colour(new)} instead of {_colour(old)}",
            f"is {_colour(new)} colored",
            f"has a {_colour(new)} color",
        ]
    elif attribute == "pattern":
        looks = {
            "stripes": ["is striped", "has stripes"],
            "checks": ["is checked", "has a check pattern"],
            "dots": ["has polka dots", "is dotted"],
            "chevron": ["has a chevron pattern"],
        }
        options = looks[new] if new else ["is solid", "has no pattern", "is plain"]
    elif attribute in ORDER and old in ORDER[attribute] and new in ORDER[attribute]:
        longer = ORDER[attribute].index(new) > ORDER[attribute].index(old)
        if attribute == "sleeves":
            named = "is sleeveless" if new == "sleeveless" else f"has {new} sleeves"
            options = [named, f"has {'longer' if longer else 'shorter'} sleeves"]
        else:
            options = [f"is {new} length", f"is {'longer' if longer else 'shorter'}"]
    elif attribute == "neckline":
        named = _article(NECKLINE_WORDS.get(new or "", new or "collar"))
        options = [f"has {named}"]
        if old:
            options.append(f"has {named} instead of {_article(NECKLINE_WORDS.get(old, old))}")
    elif attribute == "front_print":
        options = (
            [f"has {_article(new)} print", f"has {_article(new)} on the front"]
            if new
            else ["has no graphic", "is plain"]
        )
    else:  # lengths outside the ordered scale (e.g. cropped tops)
        options = [f"is {new}" if new else f"is not {old}"]
    return options[int(rng.integers(len(options)))]


def captions(changes: list[Change], rng: np.random.Generator) -> list[str]:
    """Two captions; together they describe every change (each annotator saw the same pair)."""
    first, last = changes[0], changes[-1]
    one = describe_change(first, rng)
    two = describe_change(last, rng)
    if len(changes) == 2:
        if rng.random() < 0.5:
            one = f"{one} and {describe_change(last, rng)}"
        if rng.random() < 0.5:
            two = f"{two} and {describe_change(first, rng)}"
    return [one, two]


def _save(image: np.ndarray, path: Path, image_format: ImageFormat) -> None:
    if image_format == "png":
        Image.fromarray(image).save(path, format="PNG", compress_level=1)
    else:
        Image.fromarray(image).save(path, format="JPEG", quality=92)


def write_fashioniq(
    root: str | os.PathLike[str],
    triplets: int,
    rng: np.random.Generator,
    image_format: ImageFormat = "png",
    on_image: Callable[[], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Write the release under ``root`` with ``triplets`` train triplets per category (and 40%
    of that for val and test); returns the triplet counts per category and split."""
    root = Path(root)
    for folder in ("captions", "image_splits", "images"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    truth: dict[str, dict[str, object]] = {}
    taken: set[str] = set()
    counts: dict[str, dict[str, int]] = {}
    for category in FASHIONIQ_CATEGORIES:
        counts[category] = {}
        for split, n in split_sizes(triplets).items():
            writer = _SplitWriter(root, category, rng, image_format, truth, taken, on_image)
            counts[category][split] = writer.write(split, n)
    (root / ATTRIBUTES_FILE).write_text(
        json.dumps(truth, indent=1, sort_keys=True), encoding="utf-8"
    )
    return counts


class _SplitWriter:
    """Images, captions and split list of one (category, split)."""

    def __init__(
        self,
        root: Path,
        category: str,
        rng: np.random.Generator,
        image_format: ImageFormat,
        truth: dict[str, dict[str, object]],
        taken: set[str],
        on_image: Callable[[], None] | None,
    ) -> None:
        if image_format not in ("png", "jpg"):
            raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
        self.root, self.category, self.rng, self.format = root, category, rng, image_format
        self.truth, self.taken, self.on_image = truth, taken, on_image
        self.sources = [SUBCATEGORY_BY_NAME[name] for name in FASHIONIQ_SOURCES[category]]
        self.asins: list[str] = []

    def _product(self) -> Product:
        sub = self.sources[int(self.rng.integers(len(self.sources)))]
        return sample_product(self.rng, 0, sub)

    def _shoot(self, product: Product) -> str:
        asin = new_asins(1, self.rng, self.taken)[0]
        view = sample_view(product, "front", self.rng, plain=True)
        _save(
            render_image(product, view), self.root / "images" / f"{asin}.{self.format}", self.format
        )
        self.truth[asin] = {
            "category": self.category,
            "subcategory": product.subcategory.name,
            "attributes": dict(product.attributes),
        }
        self.asins.append(asin)
        if self.on_image is not None:
            self.on_image()
        return asin

    def write(self, split: str, n: int) -> int:
        entries: list[Mapping[str, object]] = []
        for _ in range(n):
            reference = self._product()
            target, changes = modify(reference, self.rng)
            candidate, target_asin = self._shoot(reference), self._shoot(target)
            entry: dict[str, object] = {} if split == "test" else {"target": target_asin}
            entry.update(candidate=candidate, captions=captions(changes, self.rng))
            entries.append(entry)
        for _ in range(math.ceil(DISTRACTOR_SHARE * n)):
            self._shoot(self._product())
        gallery = [self.asins[i] for i in self.rng.permutation(len(self.asins))]
        name = f"{self.category}.{split}.json"
        (self.root / "captions" / f"cap.{name}").write_text(
            json.dumps(entries, indent=1), encoding="utf-8"
        )
        (self.root / "image_splits" / f"split.{name}").write_text(
            json.dumps(gallery), encoding="utf-8"
        )
        return len(entries)
