"""The rows a search index points at: a FashionGen-layout h5 file (FashionGen itself, the
synthetic catalogue, or a converted catalogue) or a catalogue table (.csv / .jsonl) with its
image folder. Both give images by row, texts and the product ids shown to the user.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from lavis_syncmask.data.catalogue import CatalogueReader, OnBadRow
from lavis_syncmask.data.convert import PRODUCT_KEY_KEY
from lavis_syncmask.data.fashiongen import FashionGenH5

TABLE_SUFFIXES = (".csv", ".jsonl")


def open_source(
    data: str | os.PathLike[str],
    images: str | os.PathLike[str] | None = None,
    on_bad_row: OnBadRow = "error",
) -> FashionGenH5 | CatalogueReader:
    """A reader for ``data``: a catalogue table when it ends in .csv / .jsonl, else an h5."""
    path = Path(data).expanduser().resolve()
    if path.suffix.lower() in TABLE_SUFFIXES:
        return CatalogueReader(path, images, on_bad_row, config_key="--data")
    if images is not None:
        raise ValueError("--images applies to a catalogue table (.csv / .jsonl), not an h5 file")
    return FashionGenH5(path, config_key="--data")


def product_keys(reader: FashionGenH5 | CatalogueReader) -> list[str]:
    """The product id of every row as the user knows it (a table's own ids, a converted h5's
    `input_product_key`, else FashionGen's integer ids)."""
    if isinstance(reader, CatalogueReader):
        return list(reader.product_keys)
    if PRODUCT_KEY_KEY in reader.keys():
        return reader.strings(PRODUCT_KEY_KEY)
    return [str(int(pid)) for pid in reader.product_ids()]


def row_texts(reader: FashionGenH5 | CatalogueReader) -> list[str]:
    return reader.texts("description", require_nonempty=False)


class ImageRows(Dataset):
    """``(row, processed image)`` for a DataLoader over ``rows`` of ``reader``."""

    def __init__(self, reader: Any, vis_processor: Any, rows: np.ndarray | None = None) -> None:
        self.reader, self.vis_processor = reader, vis_processor
        self.rows = np.arange(len(reader)) if rows is None else np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        row = int(self.rows[i])
        return row, self.vis_processor(Image.fromarray(self.reader.image(row)))
