"""Writer of the FashionGen-format h5 files of the synthetic catalogue and of their visibility
sidecars (benchmarks-and-data.md, "FashionGen" and "The synthetic fashion set"; the sidecar
schema is the one lavis_syncmask/data/visibility.py reads).

One row per image, rows of a product consecutive, every key of the real schema at the real
dtype and shape; images are stored in one-image chunks so readers can read rows lazily.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import h5py
import numpy as np

from lavis_syncmask.data.synthetic.catalogue import Product, ViewSpec, metadata_row
from lavis_syncmask.data.synthetic.render import SIZE, render_with_patches
from lavis_syncmask.data.synthetic.text import WordSpan

STRING_KEYS: tuple[str, ...] = (
    "input_description",
    "input_name",
    "input_category",
    "input_subcategory",
    "input_pose",
    "input_brand",
    "input_composition",
    "input_concat_description",
    "input_department",
    "input_gender",
    "input_season",
)
#: Text fields the sidecar lists words of.
WORD_KEYS: tuple[str, ...] = ("input_description", "input_name")
Compression = Literal["lzf", "gzip", "none"]
_BLOCK = 64  # images rendered per h5 write


def _encode(value: str, key: str, product_id: int) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"product {product_id}: {key} {value!r} is not Latin-1 encodable ({err})"
        ) from err


def _string_column(values: Sequence[bytes]) -> np.ndarray:
    """``(N, 1)`` fixed-length bytes (``S<n>``, n = longest value)."""
    width = max([len(v) for v in values] + [1])
    return np.array(values, dtype=f"S{width}").reshape(-1, 1)


def _rows(products: Sequence[Product]) -> list[tuple[Product, ViewSpec]]:
    return [(product, view) for product in products for view in product.views]


def word_records(spans: Sequence[WordSpan], visible: set[str]) -> list[list[object]]:
    """Sidecar word entries ``[start, end, visible, attribute_or_null]`` of one field."""
    return [
        [start, end, int(attribute is not None and attribute in visible), attribute]
        for start, end, attribute in spans
    ]


def sidecar_record(
    row: int, product: Product, view: ViewSpec, patches: dict[str, list[int]]
) -> str:
    """One JSON line of the visibility sidecar."""
    visible = set(patches)
    record = {
        "row": row,
        "product_id": product.product_id,
        "pose": view.pose,
        "words": {
            "input_description": word_records(product.text.description_words, visible),
            "input_name": word_records(product.text.name_words, visible),
        },
        "attributes": patches,
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _write_metadata(h5: h5py.File, rows: Sequence[tuple[Product, ViewSpec]]) -> None:
    columns: dict[str, list[bytes]] = {key: [] for key in STRING_KEYS}
    for product, view in rows:
        strings = metadata_row(product) | {"input_pose": view.pose}
        for key in STRING_KEYS:
            columns[key].append(_encode(strings[key], key, product.product_id))
    for key in STRING_KEYS:
        h5.create_dataset(key, data=_string_column(columns[key]), track_times=False)
    n = len(rows)
    ids = np.array([p.product_id for p, _ in rows], dtype=np.int64).reshape(n, 1)
    msrp = np.array([p.msrp for p, _ in rows], dtype=np.float32).reshape(n, 1)
    h5.create_dataset("input_productID", data=ids, track_times=False)
    h5.create_dataset("input_msrpUSD", data=msrp, track_times=False)
    h5.create_dataset("index", data=np.arange(n, dtype=np.int64).reshape(n, 1), track_times=False)
    h5.create_dataset("index_2", data=np.arange(n, dtype=np.int64), track_times=False)


def write_fashiongen_split(
    h5_path: str | os.PathLike[str],
    products: Sequence[Product],
    sidecar_path: str | os.PathLike[str],
    compression: Compression = "lzf",
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Render every view of ``products`` into a FashionGen-format h5 (``input_image``
    ``(N, 256, 256, 3)`` uint8 and the ``(N, 1)`` metadata columns) and write its visibility
    sidecar; ``on_rows(k)`` is called after each block of k rows. Returns N."""
    rows = _rows(products)
    if not rows:
        raise ValueError(f"{h5_path}: no products to write")
    path, sidecar = Path(h5_path), Path(sidecar_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {} if compression == "none" else {"compression": compression}
    with h5py.File(path, "w", track_order=False) as h5, open(sidecar, "w", encoding="utf-8") as out:
        images = h5.create_dataset(
            "input_image",
            shape=(len(rows), SIZE, SIZE, 3),
            dtype=np.uint8,
            chunks=(1, SIZE, SIZE, 3),
            track_times=False,
            **options,
        )
        for start in range(0, len(rows), _BLOCK):
            block = rows[start : start + _BLOCK]
            pixels = np.empty((len(block), SIZE, SIZE, 3), dtype=np.uint8)
            lines = []
            for i, (product, view) in enumerate(block):
                rendered = render_with_patches(product.garment, view)
                pixels[i] = rendered.image
                lines.append(sidecar_record(start + i, product, view, rendered.patches))
            images[start : start + len(block)] = pixels
            out.write("\n".join(lines) + "\n")
            if on_rows is not None:
                on_rows(len(block))
        _write_metadata(h5, rows)
    return len(rows)
