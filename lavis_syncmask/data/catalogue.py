"""Your own product catalogue: a CSV or JSONL table plus an image folder, read with the same
interface as the FashionGen h5 reader, so the FashionGen datasets (pretraining pairs, the
retrieval protocols, the semi-hard sampler's metadata) work on it unchanged.

Columns (CSV header or JSONL keys): ``image`` (path, relative to the image folder or
absolute), ``text``, ``product_id`` (any string; several rows may share one: several views of
a product), and optional ``category`` and ``subcategory``. Any other column is an error that
lists these. Rows that cannot be used (a missing image, a row with too many or too few
fields, an empty text or id, invalid JSON, a text that is not Latin-1 as FashionGen's h5 layout
needs) raise one error naming the file, the line and the reason with ``on_bad_row="error"``
(the default), or are skipped and counted (a warning gives the count and the first reasons)
with ``on_bad_row="skip"``. Rows are regrouped so a product's rows are consecutive, in order of
each product's first row, as in FashionGen.

Example:
    >>> reader = CatalogueReader("shop/train.csv", images="shop/images")  # doctest: +SKIP
    >>> reader.image(0).shape, reader.strings("input_description")[0]  # doctest: +SKIP
    ((256, 256, 3), 'Red cotton shirt with long sleeves.')
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageOps

from lavis_syncmask.data.fashiongen import IMAGE_SHAPE, field_keys, join_fields

OnBadRow = Literal["error", "skip"]
ON_BAD_ROW: tuple[str, ...] = get_args(OnBadRow)
REQUIRED_COLUMNS = ("image", "text", "product_id")
OPTIONAL_COLUMNS = ("category", "subcategory")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
#: The value of an optional column a table leaves out.
UNSPECIFIED = "unspecified"
#: FashionGen string keys this reader answers, and the column each one comes from.
KEY_COLUMNS = {
    "input_description": "text",
    "input_name": "text",
    "input_category": "category",
    "input_subcategory": "subcategory",
}
_WHITE = (255, 255, 255)
logger = logging.getLogger(__name__)


class CatalogueError(ValueError):
    """A catalogue table that cannot be read as a whole, or a bad row under ``on_bad_row: error``."""


@dataclass(frozen=True)
class CatalogueRow:
    image: Path
    text: str
    product_id: str
    category: str
    subcategory: str
    line: int  # 1-based line of the table where the row ends (CSV quoting may span lines)


def load_square_rgb(path: str | os.PathLike[str], size: int = IMAGE_SHAPE[0]) -> np.ndarray:
    """``(size, size, 3)`` uint8: the image padded with white to a square (product photos sit
    on white) and resized, so no garment is cropped or stretched."""
    with Image.open(path) as image:
        square = ImageOps.pad(image.convert("RGB"), (size, size), Image.BICUBIC, color=_WHITE)
    return np.asarray(square, dtype=np.uint8)


def _check_columns(columns: list[str], table: Path, where: str) -> None:
    unknown = [c for c in columns if c not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if unknown or missing:
        problem = f"unknown column(s) {unknown}" if unknown else f"missing column(s) {missing}"
        raise CatalogueError(
            f"{table}{where}: {problem}; valid columns: {list(COLUMNS)} "
            f"(required: {list(REQUIRED_COLUMNS)})"
        )


def _csv_records(table: Path) -> Iterator[tuple[int, dict[str, str | None] | str]]:
    """``(line, record)`` per data row, or ``(line, reason)`` for a row with a wrong field count."""
    with open(table, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise CatalogueError(f"{table}: empty file, expected a header with {list(COLUMNS)}")
        header = [name.strip() for name in header]
        _check_columns(header, table, " header")
        for fields in reader:
            if not fields:  # a blank line
                continue
            if len(fields) != len(header):
                yield reader.line_num, f"{len(fields)} fields, the header has {len(header)}"
                continue
            yield reader.line_num, dict(zip(header, fields))


def _jsonl_records(table: Path) -> Iterator[tuple[int, dict[str, str | None] | str]]:
    with open(table, encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as err:
                yield line, f"invalid JSON ({err.msg})"
                continue
            if not isinstance(record, dict):
                yield line, f"a JSON {type(record).__name__}, expected an object"
                continue
            _check_columns(list(record), table, f", line {line}")
            yield line, {k: None if v is None else str(v) for k, v in record.items()}


def _row(record: dict[str, str | None], line: int, images: Path) -> CatalogueRow | str:
    """The row, or the reason it cannot be used."""
    values = {k: (record.get(k) or "").strip() for k in COLUMNS}
    for column in REQUIRED_COLUMNS:
        if not values[column]:
            return f"empty `{column}`"
    for column in ("text", "product_id", "category", "subcategory"):
        try:
            values[column].encode("latin-1")
        except UnicodeEncodeError:
            return f"`{column}` has characters outside Latin-1 (FashionGen's h5 layout stores Latin-1)"
    image = Path(values["image"]).expanduser()
    image = image if image.is_absolute() else images / image
    if not image.is_file():
        return f"image {image} does not exist"
    return CatalogueRow(
        image=image,
        text=values["text"],
        product_id=values["product_id"],
        category=values["category"] or UNSPECIFIED,
        subcategory=values["subcategory"] or UNSPECIFIED,
        line=line,
    )


def read_catalogue_rows(
    table: str | os.PathLike[str],
    images: str | os.PathLike[str] | None = None,
    on_bad_row: OnBadRow = "error",
) -> tuple[list[CatalogueRow], list[tuple[int, str]]]:
    """The usable rows of ``table`` (grouped by product) and ``(line, reason)`` of each skipped
    row. ``images``: the folder relative image paths are joined to (default: the table's)."""
    path = Path(table).expanduser()
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}")
    if not path.is_file():
        raise FileNotFoundError(f"catalogue table {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise CatalogueError(f"{path}: expected a .csv or .jsonl table, got {suffix!r}")
    folder = Path(images).expanduser() if images is not None else path.parent
    records = _csv_records(path) if suffix == ".csv" else _jsonl_records(path)
    rows: list[CatalogueRow] = []
    skipped: list[tuple[int, str]] = []
    for line, record in records:
        row = record if isinstance(record, str) else _row(record, line, folder)
        if isinstance(row, CatalogueRow):
            rows.append(row)
        elif on_bad_row == "error":
            raise CatalogueError(
                f"{path}, line {line}: {row}. Fix the row, or skip such rows and count them "
                "with `on_bad_row: skip` (converter: --on-bad-row skip)."
            )
        else:
            skipped.append((line, row))
    if skipped:
        first = "; ".join(f"line {line}: {why}" for line, why in skipped[:3])
        logger.warning("%s: skipped %d bad row(s) of %d (%s)", path, len(skipped),
                       len(skipped) + len(rows), first)  # fmt: skip
    if not rows:
        raise CatalogueError(f"{path}: no usable row ({len(skipped)} skipped)")
    order = {pid: i for i, pid in enumerate(dict.fromkeys(r.product_id for r in rows))}
    rows.sort(key=lambda r: order[r.product_id])  # stable: a product's rows keep their order
    return rows, skipped


def product_codes(product_ids: list[str]) -> np.ndarray:
    """``(N,)`` int64 ids: the ids themselves when all are integers, else the rank of each
    id's first appearance (FashionGen stores product ids as integers)."""
    try:
        return np.asarray([int(pid) for pid in product_ids], dtype=np.int64)
    except ValueError:
        first = {pid: i for i, pid in enumerate(dict.fromkeys(product_ids))}
        return np.asarray([first[pid] for pid in product_ids], dtype=np.int64)


class CatalogueReader:
    """A catalogue table read with :class:`~lavis_syncmask.data.fashiongen.FashionGenH5`'s
    interface: ``path``, ``len``, ``image(row)``, ``strings(key)``, ``field``,
    ``product_ids()``, ``texts(text_fields)``; plus ``rows``, ``product_keys`` (the table's
    own product ids) and ``skipped``."""

    def __init__(
        self,
        table: str | os.PathLike[str],
        images: str | os.PathLike[str] | None = None,
        on_bad_row: OnBadRow = "error",
        config_key: str = "table",
    ) -> None:
        self.path = Path(table).expanduser()
        self.config_key = config_key
        try:
            self.rows, self.skipped = read_catalogue_rows(table, images, on_bad_row)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err} (config key `{config_key}`)") from err
        self.product_keys = [row.product_id for row in self.rows]
        self._codes = product_codes(self.product_keys)

    def __len__(self) -> int:
        return len(self.rows)

    def keys(self) -> list[str]:
        return sorted(KEY_COLUMNS)

    def image(self, row: int) -> np.ndarray:
        """Row ``row``'s image, ``(256, 256, 3)`` uint8 RGB."""
        path = self.rows[row].image
        try:
            return load_square_rgb(path)
        except (OSError, ValueError) as err:  # vanished or corrupt since the table was read
            raise OSError(f"{self.path}, line {self.rows[row].line}: cannot read {path}: {err}")

    def strings(self, key: str) -> list[str]:
        if key not in KEY_COLUMNS:
            raise KeyError(f"{self.path}: a catalogue has no {key!r}; it has {self.keys()}")
        return [getattr(row, KEY_COLUMNS[key]) for row in self.rows]

    def field(self, key: str, row: int) -> str:
        if key not in KEY_COLUMNS:
            self.strings(key)  # raises the KeyError that lists the keys
        return getattr(self.rows[row], KEY_COLUMNS[key])

    def product_ids(self) -> np.ndarray:
        return self._codes.copy()

    def texts(self, text_fields: str = "description", require_nonempty: bool = True) -> list[str]:
        del require_nonempty  # empty texts never get past read_catalogue_rows
        columns = [self.strings(key) for key in field_keys(text_fields)]
        return [join_fields(parts) for parts in zip(*columns)]

    def close(self) -> None:
        """Nothing stays open (one file per image); for FashionGenH5's interface."""
