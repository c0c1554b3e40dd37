"""Procedural synthetic fashion catalogue in the real FashionGen / FashionIQ file formats, with a
ground-truth visibility sidecar (benchmarks-and-data.md, "The synthetic fashion set"; it makes
the sync precision of method.md section 5 measurable).

    python -m lavis_syncmask.synthetic --out data/synthetic --products 600 --val-products 150 --seed 0

Modules: ``taxonomy`` (fixed tables), ``catalogue`` (sampling products and views), ``text``
(description / name grammar with word spans), ``garments`` + ``geometry`` + ``labels`` +
``render`` (the renderer and its ground truth), ``fashiongen_writer`` / ``fashioniq_writer``
(file formats), ``generate`` (the whole folder), ``summary`` (reading it back).
"""

from __future__ import annotations

from lavis_syncmask.synthetic.catalogue import Product, sample_products, sample_views
from lavis_syncmask.synthetic.generate import Catalogue, build_catalogue, generate_catalogue
from lavis_syncmask.synthetic.geometry import ViewSpec
from lavis_syncmask.synthetic.render import RenderedView, render_image, render_view
from lavis_syncmask.synthetic.summary import format_summary, summarize_catalogue

__all__ = [
    "Catalogue",
    "Product",
    "RenderedView",
    "ViewSpec",
    "build_catalogue",
    "format_summary",
    "generate_catalogue",
    "render_image",
    "render_view",
    "sample_products",
    "sample_views",
    "summarize_catalogue",
]
