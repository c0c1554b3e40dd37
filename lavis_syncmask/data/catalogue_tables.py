"""Reading a catalogue table (CSV or JSONL) into raw records, checked as data rather than
guessed: the text encoding is a BOM or UTF-8 unless declared, and a byte that does not decode
is an error naming the file and line; a header that names a column twice is an error (the
csv module would let the last one win); a JSONL value must be a JSON string (a list would be
stored as its Python repr), except that a product id may be a JSON integer.

Each record is ``(line, {column: value})``, or ``(line, reason)`` for a row that cannot be
used (the caller turns reasons into an error or a counted skip). Problems with the table as a
whole raise :class:`CatalogueError`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REQUIRED_COLUMNS = ("image", "text", "product_id")
OPTIONAL_COLUMNS = ("category", "subcategory")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
#: `encoding` default: a byte-order mark when there is one, else UTF-8.
AUTO_ENCODING = "auto"
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
Record = tuple[int, dict[str, str | None] | str]


class CatalogueError(ValueError):
    """A catalogue table that cannot be read as a whole, or a bad row under ``on_bad_row: error``."""


def check_encoding(encoding: str) -> str:
    """``encoding`` when it is ``auto`` or a codec Python knows, else a ValueError."""
    if encoding == AUTO_ENCODING:
        return encoding
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError) as err:
        raise ValueError(
            f"unknown encoding {encoding!r}: use 'auto' (a BOM, else UTF-8) or a Python codec "
            "name such as 'utf-8', 'cp1252' or 'latin-1'"
        ) from err
    return encoding


def _codec(data: bytes, encoding: str) -> str:
    if encoding != AUTO_ENCODING:
        return encoding
    return next((codec for bom, codec in _BOMS if data.startswith(bom)), "utf-8")


def read_text(table: Path, encoding: str = AUTO_ENCODING) -> str:
    """The whole table as text; a byte that does not decode names the file and line."""
    data = table.read_bytes()
    codec = _codec(data, check_encoding(encoding))
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        bad = data[err.start : err.start + 1]
        raise CatalogueError(
            f"{table}, line {line}: byte {bad!r} is not valid {codec} ({err.reason}); declare "
            "the table's encoding, e.g. cp1252 for a CSV saved by Excel on Windows "
            "(converter / search: --encoding cp1252; builder config: `encoding: cp1252`)"
        ) from err
    return text.removeprefix("\ufeff")  # a declared utf-8 / utf-16 may keep the BOM


def check_columns(columns: list[str], table: Path, where: str) -> None:
    """Every column known, none twice, the required ones present."""
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise CatalogueError(
            f"{table}{where}: column(s) {twice} appear more than once; name each column once"
        )
    unknown = [c for c in columns if c not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if unknown or missing:
        problem = f"unknown column(s) {unknown}" if unknown else f"missing column(s) {missing}"
        raise CatalogueError(
            f"{table}{where}: {problem}; valid columns: {list(COLUMNS)} "
            f"(required: {list(REQUIRED_COLUMNS)})"
        )


def csv_records(table: Path, encoding: str = AUTO_ENCODING) -> Iterator[Record]:
    """``(line, record)`` per data row, or ``(line, reason)`` for a row with a wrong field count."""
    reader = csv.reader(io.StringIO(read_text(table, encoding), newline=""))
    header = next(reader, None)
    if header is None:
        raise CatalogueError(f"{table}: empty file, expected a header with {list(COLUMNS)}")
    header = [name.strip() for name in header]
    check_columns(header, table, " header")
    for fields in reader:
        if not fields:  # a blank line
            continue
        if len(fields) != len(header):
            yield reader.line_num, f"{len(fields)} fields, the header has {len(header)}"
            continue
        yield reader.line_num, dict(zip(header, fields))


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise _DuplicateKey(f"key(s) {twice} appear more than once in one object")
    return dict(pairs)


def _json_value(column: str, value: Any) -> str | None:
    """A JSONL cell as text; raises ValueError for anything but a string (or an integer id)."""
    if value is None or isinstance(value, str):
        return value
    if column == "product_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    allowed = "a string or an integer" if column == "product_id" else "a string"
    raise ValueError(
        f"`{column}` must be {allowed}, got a JSON {type(value).__name__} {value!r:.60}"
    )


def _jsonl_record(raw: str, line: int, table: Path) -> dict[str, str | None] | str:
    try:
        record = json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as err:
        raise CatalogueError(f"{table}, line {line}: {err}; name each column once") from err
    except json.JSONDecodeError as err:
        return f"invalid JSON ({err.msg})"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, expected an object"
    check_columns(list(record), table, f", line {line}")
    try:
        return {key: _json_value(key, value) for key, value in record.items()}
    except ValueError as err:
        return str(err)


def jsonl_records(table: Path, encoding: str = AUTO_ENCODING) -> Iterator[Record]:
    """``(line, record)`` per JSON object line, or ``(line, reason)`` for an unusable line."""
    # split("\n"), not splitlines(): a JSON string may hold U+2028, which is no line break here.
    for line, raw in enumerate(read_text(table, encoding).split("\n"), start=1):
        if raw.strip():
            yield line, _jsonl_record(raw, line, table)
