"""Reader of the visibility sidecar that the synthetic catalogue writes next to each FashionGen-
format h5 (benchmarks-and-data.md, "The synthetic fashion set"): for every image row, which
words of its text are visible in that view and which patches each visible attribute covers.
It gives the ground truth of word / patch sync precision (method.md section 5).

File: ``<h5 stem>_visibility.jsonl``: a header line ``{"fingerprint": {"rows": N, "fields":
[...], "text_sha256": ...}}`` (:func:`text_fingerprint` of the h5 rows it describes, so a
sidecar left over from another version of the h5 is refused instead of silently misread),
then one JSON object per row, in row order::

    {"row": 0, "product_id": 7, "pose": "front",
     "words": {"input_description": [[start, end, visible, attribute_or_null], ...],
               "input_name": [...]},
     "attributes": {"colour": [patch indices 0..255 of the 16x16 grid at 256 px], ...}}

Offsets index the decoded field string. Lines are located by a byte-offset index built once,
then read on demand, so a sidecar of the real train size is never parsed whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from lavis_syncmask.common.paths import require_file, resolve_data_path
from lavis_syncmask.data.fashiongen import TextFields, field_keys, field_offsets
from lavis_syncmask.data.formats import sidecar_path

GRID = 16
#: The text fields whose words a sidecar describes (and whose texts its fingerprint hashes).
SIDECAR_FIELDS: tuple[str, ...] = ("input_description", "input_name")
FINGERPRINT_KEY = "fingerprint"


def text_fingerprint(columns: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """``{"rows", "fields", "text_sha256"}`` of h5 text columns (field -> one string per row).

    Example:
        >>> text_fingerprint({"input_name": ["a", "b"]})["rows"]
        2
    """
    fields = list(columns)
    counts = {len(columns[key]) for key in fields}
    if len(counts) > 1:
        raise ValueError(f"text columns {fields} have different lengths {sorted(counts)}")
    digest = hashlib.sha256()
    for key in fields:
        digest.update(key.encode("utf-8") + b"\x1d")
        for text in columns[key]:
            # Separators that cannot occur in FashionGen text keep row boundaries unambiguous.
            digest.update(text.encode("utf-8") + b"\x1e")
    rows = counts.pop() if counts else 0
    return {"rows": rows, "fields": fields, "text_sha256": digest.hexdigest()}


def fingerprint_header(columns: Mapping[str, Sequence[str]]) -> str:
    """The sidecar's first line (no newline) for the h5 text ``columns``."""
    return json.dumps({FINGERPRINT_KEY: text_fingerprint(columns)}, separators=(",", ":"))


def resolve_sidecar(
    setting: str | os.PathLike[str] | None,
    h5_path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    config_key: str = "sidecar",
) -> Path | None:
    """The sidecar to use: ``None``/``"null"`` -> none; ``"auto"`` -> the file next to the h5
    if it exists; anything else is a path (relative to the data root) that must exist."""
    if setting is None or str(setting).lower() in ("null", "none", ""):
        return None
    if str(setting) == "auto":
        candidate = sidecar_path(h5_path)
        return candidate if candidate.exists() else None
    return require_file(resolve_data_path(setting, root), config_key)


class VisibilitySidecar:
    """Per-row visibility records.

    Args:
        path: the ``.jsonl`` file.
        field_texts: h5 key -> decoded string per row; needed to shift offsets when several
            fields are joined (``name+description``) and to check spans against the text.
        expected_rows: when given, the number of records must match (the h5 row count).
        h5_texts: when given (h5 file, field -> strings of its rows), the sidecar must carry
            a fingerprint of exactly these rows: a sidecar of another h5 version is an error.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        field_texts: Mapping[str, Sequence[str]] | None = None,
        expected_rows: int | None = None,
        h5_texts: tuple[Path, Callable[[str], Sequence[str]]] | None = None,
    ) -> None:
        self.path = require_file(Path(path), "sidecar")
        self.field_texts = dict(field_texts or {})
        self._file: IO[bytes] | None = None
        self._pid: int | None = None
        self.fingerprint, self._starts = self._index_lines()
        if h5_texts is not None:
            self._check_fingerprint(*h5_texts)
        if expected_rows is not None and len(self._starts) != expected_rows:
            raise ValueError(
                f"{self.path} has {len(self._starts)} records but its h5 has {expected_rows} rows"
            )

    def _check_fingerprint(self, h5_path: Path, strings: Callable[[str], Sequence[str]]) -> None:
        """Refuse a sidecar whose fingerprint is missing or is not that of ``h5_path``'s rows."""
        regenerate = (
            "regenerate the catalogue (python -m lavis_syncmask.synthetic) or set the dataset's "
            "`sidecar: null`"
        )
        if self.fingerprint is None:
            raise ValueError(
                f"visibility sidecar {self.path} carries no fingerprint of the rows of {h5_path}, "
                f"so it cannot be checked against them; {regenerate}"
            )
        fields = [str(f) for f in self.fingerprint.get("fields", SIDECAR_FIELDS)]
        actual = text_fingerprint({key: strings(key) for key in fields})
        if actual != self.fingerprint:
            raise ValueError(
                f"visibility sidecar {self.path} does not describe {h5_path}: it was written for "
                f"{self.fingerprint.get('rows')} rows with text hash "
                f"{str(self.fingerprint.get('text_sha256'))[:12]}..., the h5 has "
                f"{actual['rows']} rows with text hash {actual['text_sha256'][:12]}... "
                f"(a sidecar left from another version of the h5?); {regenerate}"
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None
        return state

    def __len__(self) -> int:
        return len(self._starts)

    def _index_lines(self) -> tuple[dict[str, Any] | None, np.ndarray]:
        """The fingerprint header (None when absent) and the byte offset of every record."""
        starts, offset, header = [], 0, None
        marker = b'{"' + FINGERPRINT_KEY.encode()
        with open(self.path, "rb") as f:
            for line in f:
                if line.strip():
                    if not starts and header is None and line.startswith(marker):
                        header = self._parse_header(line)
                    else:
                        starts.append(offset)
                offset += len(line)
        return header, np.asarray(starts, dtype=np.int64)

    def _parse_header(self, line: bytes) -> dict[str, Any]:
        try:
            header = json.loads(line)[FINGERPRINT_KEY]
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{self.path}: bad fingerprint header: {err}") from err
        if not isinstance(header, dict):
            raise ValueError(f"{self.path}: the fingerprint header is no object: {header!r}")
        return header

    def _handle(self) -> IO[bytes]:
        if self._file is None or self._pid != os.getpid():
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open across reads
            self._pid = os.getpid()
        return self._file

    def record(self, row: int) -> dict[str, Any]:
        """The JSON object of ``row`` (checked to carry that row number)."""
        if not 0 <= row < len(self._starts):
            raise IndexError(f"row {row} is out of range for {self.path} ({len(self)} records)")
        handle = self._handle()
        handle.seek(int(self._starts[row]))
        line = handle.readline()
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.path}: record {row} is not valid JSON: {err}") from err
        if record.get("row") != row:
            raise ValueError(
                f"{self.path}: record {row} says row={record.get('row')!r}; records must be "
                "one per h5 row, in row order"
            )
        return record

    def _words(self, row: int, record: Mapping[str, Any], key: str) -> list[Sequence[Any]]:
        words = record.get("words", {})
        if key not in words:
            raise ValueError(
                f"{self.path}: row {row} has no word list for {key!r} (has {sorted(words)})"
            )
        return words[key]

    def visible_spans(self, row: int, text_fields: TextFields) -> list[tuple[int, int]]:
        """Character spans ``[(start, end), ...]`` of the visible words of ``row``, in the
        joined text of ``text_fields`` (offsets of later fields shifted past earlier ones)."""
        record = self.record(row)
        keys = field_keys(text_fields)
        shifts = self._shifts(row, keys)
        spans = []
        for key, shift in zip(keys, shifts):
            limit = len(self.field_texts[key][row]) if key in self.field_texts else None
            for start, end, visible, *_ in self._words(row, record, key):
                if limit is not None and not 0 <= start <= end <= limit:
                    raise ValueError(
                        f"{self.path}: row {row} {key} word span ({start}, {end}) lies outside "
                        f"its text of length {limit}"
                    )
                if visible:
                    spans.append((int(start) + shift, int(end) + shift))
        return spans

    def _shifts(self, row: int, keys: Sequence[str]) -> list[int]:
        if len(keys) == 1:
            return [0]
        missing = [k for k in keys if k not in self.field_texts]
        if missing:
            raise ValueError(
                f"joining {list(keys)} needs the texts of {missing} to shift offsets; pass "
                "field_texts to VisibilitySidecar"
            )
        return field_offsets([self.field_texts[k][row] for k in keys])

    def described_patches(self, row: int, text_fields: TextFields) -> np.ndarray:
        """``(16, 16)`` bool: patches of the attributes named by at least one visible word of
        the selected fields (row-major patch index ``r * 16 + c``)."""
        record = self.record(row)
        named = {
            word[3]
            for key in field_keys(text_fields)
            for word in self._words(row, record, key)
            if word[2] and len(word) > 3 and word[3] is not None
        }
        grid = np.zeros(GRID * GRID, dtype=bool)
        for attribute, patches in record.get("attributes", {}).items():
            if attribute not in named:
                continue
            index = np.asarray(patches, dtype=np.int64)
            if index.size and (index.min() < 0 or index.max() >= GRID * GRID):
                raise ValueError(
                    f"{self.path}: row {row} attribute {attribute!r} has patch indices outside "
                    f"0..{GRID * GRID - 1}"
                )
            grid[index] = True
        return grid.reshape(GRID, GRID)

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid = None, None
