"""The synthetic fashion catalogue (benchmarks-and-data.md, "The synthetic fashion set"):
a procedural generator that writes FashionGen-format h5 files with a ground-truth visibility
sidecar, a WordPiece vocabulary and a FashionIQ tree, in exactly the real file formats.

Command line: ``python -m lavis_syncmask.data.synthetic --out DIR --products N
--val-products M --seed S``. The generator needs numpy, h5py, PIL and tokenizers, not LAVIS.
"""

from __future__ import annotations

from lavis_syncmask.data.synthetic.catalogue import Garment, Product, ViewSpec, build_products
from lavis_syncmask.data.synthetic.generator import (
    DEFAULT_FASHIONIQ_TRIPLETS,
    DEFAULT_PRODUCTS,
    DEFAULT_VAL_PRODUCTS,
    DEFAULT_VOCAB_SIZE,
    generate_catalogue,
    plan_catalogue,
)
from lavis_syncmask.data.synthetic.render import RenderedView, render_view, render_with_patches
from lavis_syncmask.data.synthetic.summary import format_summary, summarize_catalogue

__all__ = [
    "DEFAULT_FASHIONIQ_TRIPLETS",
    "DEFAULT_PRODUCTS",
    "DEFAULT_VAL_PRODUCTS",
    "DEFAULT_VOCAB_SIZE",
    "Garment",
    "Product",
    "RenderedView",
    "ViewSpec",
    "build_products",
    "format_summary",
    "generate_catalogue",
    "plan_catalogue",
    "render_view",
    "render_with_patches",
    "summarize_catalogue",
]
