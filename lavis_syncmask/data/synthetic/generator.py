"""`generate_catalogue`: the whole synthetic fashion catalogue in one call
(benchmarks-and-data.md, "The synthetic fashion set"): FashionGen-format train / validation
h5 files with visibility sidecars, a WordPiece vocabulary, and a FashionIQ tree.

Deterministic for a seed: each part draws from its own stream of
``numpy.random.default_rng([seed, stream])``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lavis_syncmask.data.synthetic.catalogue import Product, build_products, draw_product_ids
from lavis_syncmask.data.synthetic.fashiongen_writer import Compression, write_fashiongen_split
from lavis_syncmask.data.synthetic.fashioniq_writer import (
    FASHIONIQ_SUBCATEGORIES,
    ImageFormat,
    write_fashioniq,
)

TRAIN_STEM = "fashiongen_256_256_train"
VAL_STEM = "fashiongen_256_256_validation"
DEFAULT_PRODUCTS = 600
DEFAULT_VAL_PRODUCTS = 150
DEFAULT_FASHIONIQ_TRIPLETS = 150
DEFAULT_VOCAB_SIZE = 4000
_IDS, _TRAIN, _VAL, _FASHIONIQ = range(4)


def _stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _vocab_texts(out: Path, fashioniq: bool) -> Iterator[str]:
    from lavis_syncmask.tokenizer import DEFAULT_TEXT_KEYS, iter_h5_texts

    texts = iter_h5_texts(out / f"{TRAIN_STEM}.h5", DEFAULT_TEXT_KEYS)
    if not fashioniq:
        return texts
    import json

    captions = (
        caption
        for category in FASHIONIQ_SUBCATEGORIES
        for entry in json.loads(
            (out / "fashioniq" / "captions" / f"cap.{category}.train.json").read_text("utf-8")
        )
        for caption in entry["captions"]
    )
    return chain(texts, captions)


def plan_catalogue(
    products: int, val_products: int, seed: int
) -> tuple[list[Product], list[Product]]:
    """The train and validation products :func:`generate_catalogue` writes for these
    arguments (disjoint product ids; validation only uses subcategories train has)."""
    if products < 1 or val_products < 1:
        raise ValueError(f"products and val_products must be >= 1, got {products}, {val_products}")
    ids = draw_product_ids(products + val_products, _stream(seed, _IDS))
    train = build_products(ids[:products].tolist(), _stream(seed, _TRAIN))
    present = sorted({p.garment.subcategory for p in train})
    return train, build_products(ids[products:].tolist(), _stream(seed, _VAL), present)


def generate_catalogue(
    out_dir: str | os.PathLike[str],
    products: int = DEFAULT_PRODUCTS,
    val_products: int = DEFAULT_VAL_PRODUCTS,
    seed: int = 0,
    fashioniq_triplets: int = DEFAULT_FASHIONIQ_TRIPLETS,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    progress: bool = True,
    fashioniq_format: ImageFormat = "png",
    compression: Compression = "lzf",
) -> Path:
    """Write the catalogue into ``out_dir`` and return it.

    ``products`` / ``val_products``: products per split (1 to 6 image rows each);
    ``fashioniq_triplets``: train triplets per FashionIQ category (0 skips FashionIQ);
    the vocabulary is trained on the train texts and FashionIQ train captions.

    Example:
        >>> generate_catalogue("data/synthetic", 600, 150, seed=0)  # doctest: +SKIP
        PosixPath('data/synthetic')
    """
    if fashioniq_triplets < 0:
        raise ValueError(f"fashioniq_triplets must be >= 0, got {fashioniq_triplets}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, val = plan_catalogue(products, val_products, seed)
    rows = sum(len(p.views) for p in chain(train, val))
    with tqdm(total=rows, disable=not progress, unit="img", desc="FashionGen") as bar:
        for stem, split in ((TRAIN_STEM, train), (VAL_STEM, val)):
            write_fashiongen_split(
                out / f"{stem}.h5", split, out / f"{stem}_visibility.jsonl", compression, bar.update
            )
    if fashioniq_triplets:
        with tqdm(disable=not progress, unit="img", desc="FashionIQ") as bar:
            write_fashioniq(
                out / "fashioniq",
                fashioniq_triplets,
                _stream(seed, _FASHIONIQ),
                fashioniq_format,
                bar.update,
            )
    from lavis_syncmask.tokenizer import train_wordpiece

    train_wordpiece(_vocab_texts(out, fashioniq_triplets > 0), out / "vocab", vocab_size)
    return out
