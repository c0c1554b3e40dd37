"""Lazy reader of FashionGen h5 files (benchmarks-and-data.md, "FashionGen"), and the
`text_fields` rule that turns a row's metadata into its training text.

The real train file is 13 GB: images are read one row at a time, through a handle opened on
first use in each process (h5py handles must not cross a `fork`, as DataLoader workers do).
Metadata columns are small and are read whole, through short-lived handles.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import h5py
import numpy as np

from lavis_syncmask.common.paths import require_file
from lavis_syncmask.data.formats import (
    FIELD_KEYS,
    IMAGE_KEY,
    IMAGE_SHAPE,
    PRODUCT_KEY,
    iter_strings,
)

TextFields = Literal["description", "name", "name+description"]
TEXT_FIELDS: tuple[str, ...] = get_args(TextFields)


class FashionGenKeyError(KeyError):
    """A key the reader needs is absent from the h5 file."""

    def __str__(self) -> str:  # KeyError would print the message as a quoted repr
        return str(self.args[0])


def field_keys(text_fields: str) -> tuple[str, ...]:
    """The h5 keys joined by ``text_fields``, e.g. ``("input_name", "input_description")``."""
    if text_fields not in FIELD_KEYS:
        raise ValueError(f"text_fields must be one of {TEXT_FIELDS}, got {text_fields!r}")
    return FIELD_KEYS[text_fields]


def join_fields(parts: Sequence[str]) -> str:
    """The training text of one row: its selected fields joined by a single space."""
    return " ".join(parts)


def field_offsets(parts: Sequence[str]) -> list[int]:
    """Where each part starts in :func:`join_fields` ``(parts)``."""
    offsets, cursor = [], 0
    for part in parts:
        offsets.append(cursor)
        cursor += len(part) + 1
    return offsets


def _column(data: Any, key: str, path: Path) -> np.ndarray:
    """A metadata column as a 1-D array, accepting the real ``(N, 1)`` and a plain ``(N,)``."""
    if data.ndim == 2 and data.shape[1] == 1:
        return data[:, 0]
    if data.ndim == 1:
        return data
    raise ValueError(f"{path}: key {key!r} has shape {data.shape}; expected (N, 1) or (N,)")


class FashionGenFileError(OSError):
    """The h5 file cannot be read: empty, truncated, or not HDF5."""


@contextmanager
def _readable(path: Path, config_key: str, doing: str) -> Iterator[None]:
    """Turn h5py's raw OSError (which names no file) into one naming the file and config key."""
    try:
        yield
    except FashionGenFileError:
        raise
    except OSError as err:
        size = path.stat().st_size if path.exists() else None
        raise FashionGenFileError(
            f"{path} (config key `{config_key}`, {size} bytes) could not be read while "
            f"{doing}: the file is empty, truncated or not HDF5 ({err})"
        ) from err


class FashionGenH5:
    """One FashionGen h5 file, opened lazily and never loaded whole.

    Example:
        >>> reader = FashionGenH5("data/fashiongen_256_256_validation.h5")  # doctest: +SKIP
        >>> reader.image(0).shape, reader.strings("input_name")[0]  # doctest: +SKIP
        ((256, 256, 3), 'Black cotton shirt')
    """

    def __init__(self, path: str | os.PathLike[str], config_key: str = "path") -> None:
        self.path = require_file(Path(path), config_key)
        self.config_key = config_key
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        self._strings: dict[str, list[str]] = {}
        self._len: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        # h5py handles cannot be pickled; a spawned worker re-opens on first use.
        state = dict(self.__dict__)
        state["_h5"], state["_pid"] = None, None
        return state

    def _handle(self) -> h5py.File:
        """The persistent image handle of this process (re-opened after a fork)."""
        if self._h5 is None or self._pid != os.getpid():
            with _readable(self.path, self.config_key, "opening it"):
                self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    @contextmanager
    def _metadata(self) -> Iterator[h5py.File]:
        """The persistent handle when this process already has one, else a short-lived one,
        so building a dataset leaves no open handle for a forked worker to inherit."""
        if self._h5 is not None and self._pid == os.getpid():
            with _readable(self.path, self.config_key, "reading its metadata"):
                yield self._h5
            return
        with _readable(self.path, self.config_key, "reading its metadata"):
            with h5py.File(self.path, "r") as h5:
                yield h5

    def _dataset(self, h5: h5py.File, key: str) -> Any:
        if key not in h5:
            raise FashionGenKeyError(
                f"key {key!r} is missing from {self.path} (config key `{self.config_key}`); "
                f"available keys: {sorted(h5.keys())}"
            )
        return h5[key]

    def keys(self) -> list[str]:
        with self._metadata() as h5:
            return sorted(h5.keys())

    def __len__(self) -> int:
        if self._len is None:
            with self._metadata() as h5:
                self._len = int(self._dataset(h5, IMAGE_KEY).shape[0])
        return self._len

    def image(self, row: int) -> np.ndarray:
        """Row ``row``'s image, ``(256, 256, 3)`` uint8 RGB."""
        data = self._dataset(self._handle(), IMAGE_KEY)
        if tuple(data.shape[1:]) != IMAGE_SHAPE or data.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: {IMAGE_KEY!r} holds {data.dtype} images of shape "
                f"{tuple(data.shape[1:])}; expected uint8 {IMAGE_SHAPE}"
            )
        if not 0 <= row < data.shape[0]:
            raise IndexError(f"row {row} is out of range for {self.path} ({data.shape[0]} rows)")
        with _readable(self.path, self.config_key, f"reading the image of row {row}"):
            return np.asarray(data[row])

    def strings(self, key: str) -> list[str]:
        """The whole column ``key`` decoded as Latin-1, one string per row (cached)."""
        return list(self._cached_strings(key))

    def _cached_strings(self, key: str) -> list[str]:
        if key not in self._strings:
            with self._metadata() as h5:
                data = self._dataset(h5, key)
                shared: dict[str, str] = {}  # rows of one product repeat their text: share it
                values = [shared.setdefault(t, t) for t in iter_strings(data, key, self.path)]
            self._strings[key] = values
        return self._strings[key]

    def field(self, key: str, row: int) -> str:
        """One decoded string: ``strings(key)[row]`` without copying the column."""
        return self._cached_strings(key)[row]

    def product_ids(self) -> np.ndarray:
        """``(N,)`` int64 product id of every row (FashionGen stores ``(N, 1)`` integers)."""
        with self._metadata() as h5:
            data = self._dataset(h5, PRODUCT_KEY)
            column = _column(data[()], PRODUCT_KEY, self.path)
        if column.dtype.kind not in "iu":  # bytes like b'P888352': not FashionGen's layout
            first = column[0] if len(column) else None
            raise ValueError(
                f"{self.path} (config key `{self.config_key}`): key {PRODUCT_KEY!r} holds "
                f"{column.dtype} values (row 0: {first!r}); FashionGen stores integer product "
                "ids. Re-write the column as integers, keeping the original ids under another "
                "key (the catalogue converter keeps them in `input_product_key`)"
            )
        return column.astype(np.int64)

    def texts(self, text_fields: TextFields, require_nonempty: bool = True) -> list[str]:
        """The joined text of every row for ``text_fields`` (see :func:`row_text`)."""
        columns = [self._cached_strings(key) for key in field_keys(text_fields)]
        texts = [join_fields(parts) for parts in zip(*columns)]
        if require_nonempty:
            empty = [row for row, text in enumerate(texts) if not text.strip()]
            if empty:
                raise ValueError(
                    f"{self.path}: {len(empty)} row(s) have an empty training text for "
                    f"text_fields={text_fields!r} (keys {list(field_keys(text_fields))}), first "
                    f"row {empty[0]}; choose other text_fields or remove those rows"
                )
        return texts

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5, self._pid = None, None


def row_text(reader: FashionGenH5, row: int, text_fields: TextFields) -> str:
    """The training text of one row, e.g. ``"Black shirt Long sleeve cotton shirt."`` for
    ``name+description``. Raises ValueError naming the row when that text is empty."""
    text = join_fields([reader.field(key, row) for key in field_keys(text_fields)])
    if not text.strip():
        raise ValueError(
            f"{reader.path}: row {row} has an empty training text for text_fields={text_fields!r}"
        )
    return text
