"""Generation of the whole synthetic catalogue folder (benchmarks-and-data.md, "The synthetic
fashion set"): FashionGen-format train / validation h5 files with visibility sidecars, a
FashionIQ tree, a WordPiece vocabulary trained on the train text, and the resolved settings.

Deterministic for a seed: independent random streams (product ids, train, validation,
FashionIQ) are spawned from one ``numpy.random.SeedSequence``, so the same arguments give
byte-identical h5 datasets and sidecars.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lavis_syncmask.data.formats import TRAIN_FILE, VALIDATION_FILE
from lavis_syncmask.synthetic.catalogue import Product, sample_products, sample_views
from lavis_syncmask.synthetic.fashiongen_writer import Compression, write_fashiongen_split
from lavis_syncmask.synthetic.fashioniq_writer import ImageFormat, image_count, write_fashioniq
from lavis_syncmask.synthetic.geometry import ViewSpec
from lavis_syncmask.synthetic.subcategories import SUBCATEGORIES
from lavis_syncmask.synthetic.taxonomy import Subcategory

DEFAULT_PRODUCTS = 600
DEFAULT_VAL_PRODUCTS = 150
DEFAULT_FASHIONIQ_TRIPLETS = 150
DEFAULT_VOCAB_SIZE = 4000
SETTINGS_FILE = "synthetic_catalogue.json"
_FIRST_PRODUCT_ID = 100_000


@dataclass(frozen=True)
class Catalogue:
    """Products of each split with their views, in h5 row order."""

    train: list[tuple[Product, list[ViewSpec]]]
    validation: list[tuple[Product, list[ViewSpec]]]

    def rows(self, split: str) -> list[tuple[Product, ViewSpec]]:
        """``(product, view)`` of every h5 row of ``split`` ("train" or "validation")."""
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
        return [(p, v) for p, views in getattr(self, split) for v in views]


def _streams(seed: int) -> list[np.random.Generator]:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4)]


def _with_views(
    ids: Sequence[int],
    rng: np.random.Generator,
    among: Sequence[Subcategory] = SUBCATEGORIES,
    invisible_boost: float = 0.0,
) -> list[tuple[Product, list[ViewSpec]]]:
    products = sample_products(ids, rng, among=among, invisible_boost=invisible_boost)
    return [(product, sample_views(product, rng)) for product in products]


def build_catalogue(
    products: int, val_products: int, seed: int, invisible_boost: float = 0.0
) -> Catalogue:
    """The in-memory catalogue :func:`generate_catalogue` writes for these arguments: train and
    validation products (disjoint product ids) with their views. ``invisible_boost``: see
    :func:`lavis_syncmask.synthetic.catalogue.sample_attributes`."""
    for name, value in (("products", products), ("val_products", val_products)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    ids_rng, train_rng, val_rng, _ = _streams(seed)
    ids = ids_rng.choice(900_000, size=products + val_products, replace=False) + _FIRST_PRODUCT_ID
    train = _with_views(ids[:products].tolist(), train_rng, invisible_boost=invisible_boost)
    # Validation only holds subcategories seen in training, so recognition can score them all.
    seen = [s for s in SUBCATEGORIES if any(p.subcategory is s for p, _ in train)]
    validation = _with_views(ids[products:].tolist(), val_rng, seen, invisible_boost)
    return Catalogue(train=train, validation=validation)


def generate_catalogue(
    out_dir: str | os.PathLike[str],
    products: int = DEFAULT_PRODUCTS,
    val_products: int = DEFAULT_VAL_PRODUCTS,
    seed: int = 0,
    fashioniq_triplets: int = DEFAULT_FASHIONIQ_TRIPLETS,
    progress: bool = True,
    *,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    fashioniq_image_format: ImageFormat = "png",
    compression: Compression = "gzip",
    invisible_boost: float = 0.0,
) -> Path:
    """Write the catalogue into ``out_dir`` and return it (as a ``Path``).

    ``fashioniq_triplets``: train triplets per FashionIQ category (val and test get 40% of
    that; 0 writes no FashionIQ tree). ``progress``: a tqdm bar over the images.
    ``invisible_boost`` in [0, 1]: how much of each text is invisible in a view, by making
    view-limited attributes (back details, front prints) more frequent; 0 (the default) leaves
    the catalogue byte-identical to earlier versions, 1 gives every product of a subcategory
    that has them both (the summary reports the invisible share per view type).

    Example:
        >>> out = generate_catalogue("data/synthetic", 30, 10, seed=0)  # doctest: +SKIP
        >>> print(format_summary(summarize_catalogue(out)))  # doctest: +SKIP
    """
    if fashioniq_triplets < 0 or vocab_size < 10:
        raise ValueError(
            f"fashioniq_triplets must be >= 0 and vocab_size >= 10, got {fashioniq_triplets}, {vocab_size}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = build_catalogue(products, val_products, seed, invisible_boost)
    fiq_images = image_count(fashioniq_triplets) if fashioniq_triplets else 0
    total = len(catalogue.rows("train")) + len(catalogue.rows("validation")) + fiq_images
    with tqdm(total=total, disable=not progress, unit="img", desc="synthetic catalogue") as bar:
        tick = lambda: bar.update(1)  # noqa: E731
        write_fashiongen_split(
            out / TRAIN_FILE, catalogue.train, compression=compression, on_image=tick
        )
        write_fashiongen_split(
            out / VALIDATION_FILE, catalogue.validation, compression=compression, on_image=tick
        )
        if fashioniq_triplets:
            fiq_rng = _streams(seed)[3]
            write_fashioniq(
                out / "fashioniq", fashioniq_triplets, fiq_rng, fashioniq_image_format, tick
            )
    _write_vocab(out, vocab_size)
    settings = {
        "products": products,
        "val_products": val_products,
        "seed": seed,
        "fashioniq_triplets": fashioniq_triplets,
        "vocab_size": vocab_size,
        "fashioniq_image_format": fashioniq_image_format,
        "compression": compression,
    }
    if invisible_boost:  # absent at the default, so default settings files stay identical
        settings["invisible_boost"] = invisible_boost
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return out


def _write_vocab(out: Path, vocab_size: int) -> Path:
    from lavis_syncmask.data.formats import VOCAB_KEYS, iter_h5_texts
    from lavis_syncmask.data.tokenizer import train_wordpiece

    return train_wordpiece(iter_h5_texts(out / TRAIN_FILE, VOCAB_KEYS), out / "vocab", vocab_size)
