"""Pack your own catalogue (a CSV or JSONL table plus an image folder, data/catalogue.py) into
the FashionGen h5 layout, for fast reading by the `fashiongen_*` builders and
``python -m lavis_syncmask.search index``; its command line is `cli/convert.py`
(``python -m lavis_syncmask.data.convert``).

The table is read as UTF-8 (or as its byte-order mark says) unless ``encoding`` names its
codec. Images are decoded by data/images.py (whole files only, EXIF orientation applied,
16-bit scaled, transparency on white), padded with white to a square, resized to 256 px and
stored as uint8 ``(N, 256, 256, 3)`` in one-image gzip chunks (a random row costs one chunk read). Text goes to
``input_description`` and ``input_name``, category / subcategory to their keys, product ids to
``input_productID`` (the ids themselves when all are integers, else codes) with the table's own
ids in ``input_product_key``. A row whose image cannot be decoded is handled like any bad row:
``on_bad_row="error"`` (default) stops naming the file and line, ``"skip"`` drops and counts it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from lavis_syncmask.data.catalogue import (
    CatalogueError,
    CatalogueRow,
    OnBadRow,
    product_codes,
    read_catalogue_rows,
)
from lavis_syncmask.data.catalogue_tables import AUTO_ENCODING
from lavis_syncmask.data.formats import (
    IMAGE_KEY,
    IMAGE_SHAPE,
    PRODUCT_KEY,
    PRODUCT_KEY_KEY,
    string_column,
)
from lavis_syncmask.data.images import load_square_rgb

_BLOCK = 64  # images decoded before one h5 write
logger = logging.getLogger(__name__)


def _write_metadata(h5: h5py.File, rows: Sequence[CatalogueRow]) -> None:
    n = len(rows)
    columns = {
        "input_description": [r.text for r in rows],
        "input_name": [r.text for r in rows],
        "input_category": [r.category for r in rows],
        "input_subcategory": [r.subcategory for r in rows],
    }
    for key, values in columns.items():
        h5.create_dataset(key, data=string_column(values, key), track_times=False)
    keys = [r.product_id for r in rows]
    h5.create_dataset(PRODUCT_KEY, data=product_codes(keys).reshape(n, 1), track_times=False)
    h5.create_dataset(PRODUCT_KEY_KEY, data=string_column(keys, PRODUCT_KEY_KEY), track_times=False)
    h5.create_dataset("index", data=np.arange(n, dtype=np.int64).reshape(n, 1))


def convert_catalogue(
    table: str | os.PathLike[str],
    out: str | os.PathLike[str],
    images: str | os.PathLike[str] | None = None,
    on_bad_row: OnBadRow = "error",
    progress: bool = True,
    encoding: str = AUTO_ENCODING,
) -> tuple[int, int]:
    """Write ``out`` (h5) from ``table``; returns ``(rows written, rows skipped)``.
    ``encoding``: the table's text encoding, ``auto`` (a BOM, else UTF-8) or a codec name."""
    # Images are decoded once, below, where each becomes a row or an error / counted skip.
    rows, skipped = read_catalogue_rows(table, images, on_bad_row, encoding, check_images=False)
    out_path = Path(out).expanduser()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")  # never a torn file at `out`
    kept: list[CatalogueRow] = []
    with h5py.File(partial, "w") as h5:
        data = h5.create_dataset(
            IMAGE_KEY, shape=(0, *IMAGE_SHAPE), maxshape=(None, *IMAGE_SHAPE), dtype=np.uint8,
            chunks=(1, *IMAGE_SHAPE), compression="gzip", compression_opts=1, track_times=False,
        )  # fmt: skip
        block: list[np.ndarray] = []
        for row in tqdm(rows, disable=not progress, unit="img", desc=f"convert {Path(table).name}"):
            try:
                block.append(load_square_rgb(row.image))
            except (OSError, ValueError) as err:  # unreadable or not an image
                if on_bad_row == "error":
                    raise CatalogueError(
                        f"{table}, line {row.line}: cannot read image {row.image} ({err}). "
                        "Fix it, or skip such rows and count them with --on-bad-row skip."
                    ) from err
                skipped.append((row.line, f"unreadable image {row.image}: {err}"))
                continue
            kept.append(row)
            if len(block) == _BLOCK:
                _append(data, block)
        _append(data, block)
        if not kept:
            raise CatalogueError(f"{table}: no row with a readable image")
        _write_metadata(h5, kept)
    partial.replace(out_path)
    if skipped:
        logger.warning("%s: skipped %d row(s), wrote %d", table, len(skipped), len(kept))
    return len(kept), len(skipped)


def _append(data: h5py.Dataset, block: list[np.ndarray]) -> None:
    if block:
        start = data.shape[0]
        data.resize(start + len(block), axis=0)
        data[start:] = np.stack(block)
        block.clear()
