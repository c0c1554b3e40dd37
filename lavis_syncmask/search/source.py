"""The rows a search index points at: a FashionGen-layout h5 file (FashionGen itself, the
synthetic catalogue, or a converted catalogue) or a catalogue table (.csv / .jsonl) with its
image folder. Both give images by row, texts and the product ids shown to the user, and the
bytes an index fingerprints (see `fingerprint`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from lavis_syncmask.data.catalogue import CatalogueReader, OnBadRow
from lavis_syncmask.data.fashiongen import FashionGenH5
from lavis_syncmask.data.formats import PRODUCT_KEY_KEY

TABLE_SUFFIXES = (".csv", ".jsonl")
_CHUNK = 1 << 20
Reader = FashionGenH5 | CatalogueReader


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
    reader = FashionGenH5(path, config_key="--data")
    if len(reader) == 0:  # a catalogue table with no usable row is refused when it is read
        raise ValueError(f"--data {path} has no rows: nothing to index or to search")
    return reader


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


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (checkpoints can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def row_files(reader: Reader) -> list[str]:
    """The file each row's image comes from: its image file, or the h5 file for every row."""
    if isinstance(reader, CatalogueReader):
        return [os.path.abspath(row.image) for row in reader.rows]
    return [os.path.abspath(reader.path)] * len(reader)


def image_sha256(reader: Reader, row: int, pixels: np.ndarray | None = None) -> str:
    """SHA-256 of row ``row``'s image bytes: a catalogue row's file as stored, an h5 row's
    pixel array (``pixels``: that array when already read)."""
    if isinstance(reader, CatalogueReader):
        data = Path(reader.rows[row].image).read_bytes()
    else:
        data = (reader.image(row) if pixels is None else pixels).tobytes()
    return hashlib.sha256(data).hexdigest()


class ImageRows(Dataset):
    """``(row, processed image, image SHA-256)`` for a DataLoader over ``rows`` of ``reader``
    (hashed where the image is read, in the DataLoader workers: an h5 row is read once)."""

    def __init__(self, reader: Any, vis_processor: Any, rows: np.ndarray | None = None) -> None:
        self.reader, self.vis_processor = reader, vis_processor
        self.rows = np.arange(len(reader)) if rows is None else np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, Any, str]:
        row = int(self.rows[i])
        pixels = self.reader.image(row)
        digest = image_sha256(self.reader, row, pixels)
        return row, self.vis_processor(Image.fromarray(pixels)), digest
