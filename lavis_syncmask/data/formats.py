"""The FashionGen files on disk, defined once for the readers (`data/`) and the synthetic
writer (`synthetic/`): file names, h5 keys, the visibility sidecar's suffix, and the one
iterator that decodes an h5 text column (used by the reader, the vocabulary tool and the
catalogue summary).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

TRAIN_FILE = "fashiongen_256_256_train.h5"
VALIDATION_FILE = "fashiongen_256_256_validation.h5"
#: ``<h5 stem>`` + this = the visibility sidecar next to an h5 file (data/visibility.py).
SIDECAR_SUFFIX = "_visibility.jsonl"

IMAGE_KEY = "input_image"
IMAGE_SHAPE = (256, 256, 3)
PRODUCT_KEY = "input_productID"
#: A converted catalogue's own product ids (`input_productID` must be an integer).
PRODUCT_KEY_KEY = "input_product_key"
NAME_KEY = "input_name"
DESCRIPTION_KEY = "input_description"
CATEGORY_KEY = "input_category"
SUBCATEGORY_KEY = "input_subcategory"
#: Every string column of the real schema (what the synthetic writer produces).
STRING_KEYS = (
    DESCRIPTION_KEY,
    NAME_KEY,
    CATEGORY_KEY,
    SUBCATEGORY_KEY,
    "input_pose",
    "input_brand",
    "input_composition",
    "input_concat_description",
    "input_department",
    "input_gender",
    "input_season",
)
#: The h5 keys each `text_fields` choice joins, in order (name first).
FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "description": (DESCRIPTION_KEY,),
    "name": (NAME_KEY,),
    "name+description": (NAME_KEY, DESCRIPTION_KEY),
}
#: The text a vocabulary is trained on: name and description.
VOCAB_KEYS = (NAME_KEY, DESCRIPTION_KEY)
#: Rows decoded per read, so a long fixed-length column never sits in memory undecoded.
CHUNK_ROWS = 8192


def sidecar_path(h5_path: str | os.PathLike[str]) -> Path:
    """``x/fashiongen_256_256_train.h5`` -> ``x/fashiongen_256_256_train_visibility.jsonl``."""
    path = Path(h5_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def decode(value: Any) -> str:
    """One h5 string cell as text (FashionGen stores Latin-1 bytes)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("latin-1")
    return str(value)


def iter_strings(data: Any, key: str = "?", source: Any = "h5") -> Iterator[str]:
    """Decode the h5 dataset `data` (a real ``(N, 1)`` column or a plain ``(N,)`` one) row by
    row, reading `CHUNK_ROWS` rows at a time. `key` / `source` name it in errors."""
    if data.ndim not in (1, 2) or (data.ndim == 2 and data.shape[1] != 1):
        raise ValueError(f"{source}: key {key!r} has shape {data.shape}; expected (N, 1) or (N,)")
    for start in range(0, data.shape[0], CHUNK_ROWS):
        block = data[start : start + CHUNK_ROWS]
        for raw in block[:, 0] if block.ndim == 2 else block:
            yield decode(raw)


def iter_h5_texts(h5_path: str | os.PathLike[str], keys: Iterable[str]) -> Iterator[str]:
    """The texts of `keys` joined by a space, one per product: rows of one product repeat
    their text, so consecutive duplicates are skipped (the vocabulary tool's input)."""
    import h5py

    with h5py.File(h5_path, "r") as h5:
        columns = [iter_strings(h5[key], key, h5_path) for key in keys]
        previous: tuple[str, ...] | None = None
        for values in zip(*columns):
            if values != previous:
                previous = values
                yield " ".join(values)


def string_column(values: list[str], key: str) -> np.ndarray:
    """A text column as FashionGen stores it: ``(N, 1)`` fixed-length bytes ``S<max length>``,
    Latin-1 encoded."""
    try:
        encoded = [v.encode("latin-1") for v in values]
    except UnicodeEncodeError as err:
        raise ValueError(f"{key}: a value is not Latin-1 encodable: {err}") from err
    width = max([1] + [len(b) for b in encoded])
    return np.array(encoded, dtype=f"S{width}").reshape(-1, 1)
