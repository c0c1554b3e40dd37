"""Your own product catalogue: a CSV or JSONL table plus an image folder, read with the same
interface as the FashionGen h5 reader, so the FashionGen datasets (pretraining pairs, the
retrieval protocols, the semi-hard sampler's metadata) work on it unchanged.

Columns (CSV header or JSONL keys): ``image`` (path, relative to the image folder or
absolute), ``text``, ``product_id`` (a string; several rows may share one: several views of
a product), and optional ``category`` and ``subcategory``. Any other column, or a column named
twice, is an error that lists these; how the table is decoded and parsed is in
data/catalogue_tables.py. Rows that cannot be used (a missing image, an image that does not
decode whole, a row with too many or too few fields, an empty text or id, invalid JSON, a JSON
value that is not a string, a text that is not Latin-1 as FashionGen's h5 layout needs) raise
one error naming the file, the line and the reason with ``on_bad_row="error"`` (the default),
or are skipped and counted (a warning gives the count and the first reasons) with
``on_bad_row="skip"``. Every image is decoded once when the table is read, so a bad image is
found before training starts, never in the middle of an epoch. Product ids are compared as
text; when all of them are integers they are stored as integers, and two ids that would merge
that way (``7`` and ``007``) are an error naming both rows. Rows are regrouped so a product's
rows are consecutive, in order of each product's first row, as in FashionGen.

Example:
    >>> reader = CatalogueReader("shop/train.csv", images="shop/images")  # doctest: +SKIP
    >>> reader.image(0).shape, reader.strings("input_description")[0]  # doctest: +SKIP
    ((256, 256, 3), 'Red cotton shirt with long sleeves.')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from tqdm import tqdm

from lavis_syncmask.data import images as image_files
from lavis_syncmask.data.catalogue_tables import (
    AUTO_ENCODING,
    COLUMNS,
    REQUIRED_COLUMNS,
    CatalogueError,
    Record,
    check_encoding,
    csv_records,
    jsonl_records,
)
from lavis_syncmask.data.fashiongen import IMAGE_SHAPE, field_keys, join_fields

OnBadRow = Literal["error", "skip"]
ON_BAD_ROW: tuple[str, ...] = get_args(OnBadRow)
#: The value of an optional column a table leaves out.
UNSPECIFIED = "unspecified"
#: FashionGen string keys this reader answers, and the column each one comes from.
KEY_COLUMNS = {
    "input_description": "text",
    "input_name": "text",
    "input_category": "category",
    "input_subcategory": "subcategory",
}
#: From this many rows on, the up-front image check shows a progress bar.
PROGRESS_ROWS = 500
#: Threads that decode images for the up-front check (at most the machine's cores).
CHECK_THREADS = 8
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogueRow:
    image: Path
    text: str
    product_id: str
    category: str
    subcategory: str
    line: int  # 1-based line of the table where the row ends (CSV quoting may span lines)


def load_square_rgb(path: str | os.PathLike[str], size: int = IMAGE_SHAPE[0]) -> np.ndarray:
    """``(size, size, 3)`` uint8: the image (data/images.py's one decoder) padded with white
    to a square (product photos sit on white) and resized, so no garment is cropped or
    stretched."""
    return image_files.load_square_rgb(path, size)


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
            return (
                f"`{column}` has characters outside Latin-1 (FashionGen's h5 layout stores Latin-1)"
            )
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


def _records(path: Path, encoding: str) -> Iterator[Record]:
    if not path.is_file():
        raise FileNotFoundError(f"catalogue table {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise CatalogueError(f"{path}: expected a .csv or .jsonl table, got {suffix!r}")
    return csv_records(path, encoding) if suffix == ".csv" else jsonl_records(path, encoding)


def _bad_row(path: Path, line: int, reason: str, on_bad_row: OnBadRow) -> tuple[int, str]:
    """``(line, reason)`` to count as skipped, or the error under ``on_bad_row: error``."""
    if on_bad_row == "error":
        raise CatalogueError(
            f"{path}, line {line}: {reason}. Fix the row, or skip such rows and count them "
            "with `on_bad_row: skip` (converter: --on-bad-row skip)."
        )
    return line, reason


def _image_problem(row: CatalogueRow) -> str | None:
    """Why the row's image cannot be decoded, or None (a full decode, so training never
    meets a bad image mid-epoch)."""
    try:
        image_files.load_rgb(row.image)
    except (OSError, ValueError) as err:
        return f"bad image: {err}"
    return None


def _checked_images(
    rows: list[CatalogueRow], path: Path, on_bad_row: OnBadRow
) -> tuple[list[CatalogueRow], list[tuple[int, str]]]:
    """The rows whose image decodes, and ``(line, reason)`` of the others."""
    kept: list[CatalogueRow] = []
    skipped: list[tuple[int, str]] = []
    # PIL releases the GIL while it decodes, so threads check images in parallel; `map` keeps
    # the table's order, so the first bad row is the one reported, and an error cancels the rest.
    pool = ThreadPoolExecutor(max_workers=min(CHECK_THREADS, os.cpu_count() or 1))
    try:
        problems = pool.map(_image_problem, rows)
        bar = tqdm(problems, total=len(rows), unit="img", desc=f"check images of {path.name}",
                   disable=len(rows) < PROGRESS_ROWS)  # fmt: skip
        for row, problem in zip(rows, bar):
            if problem is None:
                kept.append(row)
            else:
                skipped.append(_bad_row(path, row.line, problem, on_bad_row))
    finally:
        pool.shutdown(cancel_futures=True)
    return kept, skipped


def _check_no_merged_ids(rows: list[CatalogueRow], path: Path) -> None:
    """All-integer ids are stored as integers (:func:`product_codes`): two ids that differ as
    text but not as integers (``7`` and ``007``) would silently become one product."""
    codes = [_as_integer(row.product_id) for row in rows]
    if None in codes:
        return  # not all integers: codes follow the text, nothing merges
    first: dict[int, CatalogueRow] = {}
    for row, code in zip(rows, codes):
        seen = first.setdefault(code, row)
        if seen.product_id != row.product_id:
            raise CatalogueError(
                f"{path}: product ids {seen.product_id!r} (line {seen.line}) and "
                f"{row.product_id!r} (line {row.line}) differ as text but are the same "
                f"integer {code}; write each product's id the same way in every row"
            )


def read_catalogue_rows(
    table: str | os.PathLike[str],
    images: str | os.PathLike[str] | None = None,
    on_bad_row: OnBadRow = "error",
    encoding: str = AUTO_ENCODING,
    check_images: bool = True,
) -> tuple[list[CatalogueRow], list[tuple[int, str]]]:
    """The usable rows of ``table`` (grouped by product) and ``(line, reason)`` of each skipped
    row. ``images``: the folder relative image paths are joined to (default: the table's).
    ``encoding``: ``auto`` (a BOM, else UTF-8) or a codec name. ``check_images``: decode every
    image now, so a bad one is an error or a counted skip here and never later in training."""
    path = Path(table).expanduser()
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}")
    check_encoding(encoding)
    folder = Path(images).expanduser() if images is not None else path.parent
    rows: list[CatalogueRow] = []
    skipped: list[tuple[int, str]] = []
    for line, record in _records(path, encoding):
        row = record if isinstance(record, str) else _row(record, line, folder)
        if isinstance(row, CatalogueRow):
            rows.append(row)
        else:
            skipped.append(_bad_row(path, line, row, on_bad_row))
    if check_images:
        rows, bad_images = _checked_images(rows, path, on_bad_row)
        skipped = sorted(skipped + bad_images)
    _check_no_merged_ids(rows, path)
    if skipped:
        first = "; ".join(f"line {line}: {why}" for line, why in skipped[:3])
        logger.warning("%s: skipped %d bad row(s) of %d (%s)", path, len(skipped),
                       len(skipped) + len(rows), first)  # fmt: skip
    if not rows:
        raise CatalogueError(f"{path}: no usable row ({len(skipped)} skipped)")
    order = {pid: i for i, pid in enumerate(dict.fromkeys(r.product_id for r in rows))}
    rows.sort(key=lambda r: order[r.product_id])  # stable: a product's rows keep their order
    return rows, skipped


def _as_integer(product_id: str) -> int | None:
    """The id as an int64 value, or None (not an integer, or too long for int64)."""
    try:
        value = int(product_id)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


def product_codes(product_ids: list[str]) -> np.ndarray:
    """``(N,)`` int64 ids: the ids themselves when all are integers, else the rank of each
    id's first appearance (FashionGen stores product ids as integers). Ids that would merge
    as integers (``7``, ``007``) are refused earlier, by :func:`read_catalogue_rows`."""
    codes = [_as_integer(pid) for pid in product_ids]
    if all(code is not None for code in codes):
        return np.asarray(codes, dtype=np.int64)
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
        encoding: str = AUTO_ENCODING,
    ) -> None:
        self.path = Path(table).expanduser()
        self.config_key = config_key
        try:
            self.rows, self.skipped = read_catalogue_rows(table, images, on_bad_row, encoding)
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
            raise OSError(
                f"{self.path}, line {self.rows[row].line}: cannot read {path}: {err}"
            ) from err

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
