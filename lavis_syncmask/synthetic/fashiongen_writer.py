"""Writer of one synthetic FashionGen split in the real file format (benchmarks-and-data.md,
"FashionGen": one row per image, every key of the real schema at its dtype and shape, Latin-1
fixed-length strings, rows of a product consecutive), plus the visibility sidecar
``<h5 stem>_visibility.jsonl`` the real data lacks (schema in data/visibility.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import h5py
import numpy as np

from lavis_syncmask.data.formats import STRING_KEYS, string_column
from lavis_syncmask.data.visibility import SIDECAR_FIELDS, fingerprint_header, sidecar_path
from lavis_syncmask.synthetic.catalogue import Product
from lavis_syncmask.synthetic.geometry import SIZE, ViewSpec
from lavis_syncmask.synthetic.render import render_view

_BLOCK = 32  # images rendered before one h5 write
Compression = Literal["gzip", "lzf", "none"]

ProductViews = tuple[Product, Sequence[ViewSpec]]


def row_strings(product: Product, view: ViewSpec) -> dict[str, str]:
    """The decoded value of every string key for one image row."""
    sub = product.subcategory
    return {
        "input_description": product.description.text,
        "input_name": product.name.text,
        "input_category": sub.category,
        "input_subcategory": sub.name,
        "input_pose": view.pose,
        "input_brand": product.brand,
        "input_composition": product.composition,
        "input_concat_description": f"{product.name.text} {product.description.text}",
        "input_department": sub.department,
        "input_gender": product.gender,
        "input_season": product.season,
    }


def _metadata(items: Sequence[ProductViews]) -> dict[str, np.ndarray]:
    rows = [(product, view) for product, views in items for view in views]
    columns: dict[str, list[str]] = {key: [] for key in STRING_KEYS}
    for product, view in rows:
        for key, value in row_strings(product, view).items():
            columns[key].append(value)
    out = {key: string_column(values, key) for key, values in columns.items()}
    n = len(rows)
    out["input_productID"] = np.array([p.product_id for p, _ in rows], dtype=np.int64).reshape(n, 1)
    out["input_msrpUSD"] = np.array([p.msrp for p, _ in rows], dtype=np.float32).reshape(n, 1)
    out["index"] = np.arange(n, dtype=np.int64).reshape(n, 1)
    out["index_2"] = np.arange(n, dtype=np.int64)
    return out


def sidecar_record(
    row: int, product: Product, view: ViewSpec, patches: dict[str, list[int]]
) -> dict:
    """The sidecar object of one row: words of each text field with their visibility in
    ``view``, and the patches of every attribute visible there."""
    visible = set(patches)
    return {
        "row": row,
        "product_id": product.product_id,
        "pose": view.pose,
        "words": {
            "input_description": product.description.sidecar_words(visible),
            "input_name": product.name.sidecar_words(visible),
        },
        "attributes": patches,
    }


def write_fashiongen_split(
    h5_path: str | os.PathLike[str],
    items: Sequence[ProductViews],
    *,
    compression: Compression = "gzip",
    on_image: Callable[[], None] | None = None,
) -> int:
    """Render every view of ``items`` (products with their views, in row order) into
    ``h5_path`` and its sidecar; returns the number of rows. ``on_image`` is called after each
    image (progress bars)."""
    path = Path(h5_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = _metadata(items)
    n = len(metadata["index_2"])
    options = {"compression": "gzip", "compression_opts": 1} if compression == "gzip" else {}
    if compression == "lzf":
        options = {"compression": "lzf"}
    with (
        h5py.File(path, "w", track_order=True) as h5,
        open(sidecar_path(path), "w", encoding="ascii") as side,
    ):
        for key, data in metadata.items():
            h5.create_dataset(key, data=data, track_times=False)
        texts = {key: [v.decode("latin-1") for v in metadata[key][:, 0]] for key in SIDECAR_FIELDS}
        side.write(fingerprint_header(texts) + "\n")
        images = h5.create_dataset(
            "input_image",
            shape=(n, SIZE, SIZE, 3),
            dtype=np.uint8,
            chunks=(1, SIZE, SIZE, 3),
            track_times=False,
            **options,
        )
        block = np.empty((_BLOCK, SIZE, SIZE, 3), dtype=np.uint8)
        row = start = 0
        for product, views in items:
            for view in views:
                rendered = render_view(product, view)
                block[row - start] = rendered.image
                record = sidecar_record(row, product, view, rendered.patches)
                side.write(json.dumps(record, separators=(",", ":")) + "\n")
                row += 1
                if row - start == _BLOCK:
                    images[start:row] = block
                    start = row
                if on_image is not None:
                    on_image()
        if row > start:
            images[start:row] = block[: row - start]
    return n
