"""What a search index was built from, so that a query can tell when that is no longer true.

An index records:

- per row, the SHA-256 of the row's image bytes (a catalogue row's image file as stored, an h5
  row's pixel array) and the file they came from;
- one SHA-256 over every row in order (image digest, text, product id): the source fingerprint;
- the size and modification time (ns) of every such file (each image of a catalogue, or the
  h5 file);
- the checkpoint's path and the SHA-256 of its bytes (streamed);
- the SHA-256, size and modification time of the files it wrote itself (``features.npy``,
  ``ann.faiss``): an index folder whose features or ANN structure were replaced (copied in from
  another index of the same row count, say) is refused on load rather than answering with
  another model's rows. A file with its recorded size and time is taken as is; any other is
  re-hashed, so loading a 1M-row index costs one ``stat`` per file unless it was touched.

A query compares the reopened source with the index row by row: the row count, each row's
product id and text (a re-ordered or edited table), and each row's image. Images are re-hashed
only for rows whose file moved or whose size or time differ from the recorded ones, so a query
on a 13 GB h5 does not read it whole; ``rehash=True`` (``--rehash``) re-hashes every row.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lavis_syncmask.data.catalogue import CatalogueReader
from lavis_syncmask.search.source import (
    Reader,
    file_sha256,
    image_sha256,
    product_keys,
    row_files,
    row_texts,
)


class SourceChangedError(ValueError):
    """The rows, images or checkpoint an index was built from changed since indexing."""


def artifact_fingerprints(folder: Path, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256", "stamp": [size, mtime_ns]}}`` of files written into an index folder."""
    stamps = file_stamps([str(folder / name) for name in names])
    return {
        name: {"sha256": file_sha256(folder / name), "stamp": stamps[str(folder / name)]}
        for name in names
    }


def check_artifacts(folder: Path, meta: dict[str, Any]) -> None:
    """The index's own files are the ones its ``index.json`` recorded (indexes written before
    these were recorded are not checked; a missing file is left to the loader that needs it)."""
    for name, want in meta.get("artifacts", {}).items():
        path = folder / name
        if not path.is_file():
            continue
        stat = path.stat()
        if [stat.st_size, stat.st_mtime_ns] == want["stamp"]:
            continue  # untouched since indexing
        got = file_sha256(path)
        if got != want["sha256"]:
            raise ValueError(
                f"{path} is not the file this index wrote (sha256 {got[:12]}, recorded "
                f"{want['sha256'][:12]}): the index was altered or mixed with another's files; "
                "index again"
            )


def file_stamps(files: Sequence[str]) -> dict[str, list[int]]:
    """``{file: [size, mtime_ns]}`` of each distinct file (a vanished file raises the
    FileNotFoundError that names it)."""
    stamps = {}
    for file in dict.fromkeys(files):
        stat = os.stat(file)
        stamps[file] = [stat.st_size, stat.st_mtime_ns]
    return stamps


def source_sha256(images: Sequence[str], texts: Sequence[str], products: Sequence[str]) -> str:
    """One SHA-256 over every row in order: a re-ordered, added or edited row changes it."""
    digest = hashlib.sha256()
    for row in zip(images, texts, products, strict=True):
        digest.update(json.dumps(row).encode("utf-8") + b"\n")  # JSON: unambiguous separators
    return digest.hexdigest()


def _where(reader: Reader, row: int) -> str:
    if isinstance(reader, CatalogueReader):
        return f"row {row} ({reader.path}, line {reader.rows[row].line})"
    return f"row {row} of {reader.path}"


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def check_rows(index: Any, reader: Reader) -> None:
    """The reopened source has the indexed rows, in the indexed order, with the same texts."""
    data, n = index.meta.get("data"), len(reader)
    if n != len(index.products):
        raise SourceChangedError(
            f"{data} changed since indexing: it has {n} usable rows, the index "
            f"{len(index.products)} (rows added or removed); index it again"
        )
    now = zip(product_keys(reader), row_texts(reader))
    for row, (product, text) in enumerate(now):
        if (product, text) != (index.products[row], index.texts[row]):
            raise SourceChangedError(
                f"{data} changed since indexing: {_where(reader, row)} is now {product} "
                f"{_short(text)}, the index has {index.products[row]} "
                f"{_short(index.texts[row])} (rows re-ordered or edited); index it again"
            )


def check_images(index: Any, reader: Reader, rehash: bool = False) -> int:
    """Every row's image is the indexed one; returns how many rows were re-hashed (those whose
    file moved or changed size or time, or all with ``rehash``)."""
    files = row_files(reader)
    recorded = index.meta["source"]["files"]
    stamps = file_stamps(files)
    changed = {file for file, stamp in stamps.items() if recorded.get(file) != stamp}
    hashed = 0
    for row, file in enumerate(files):
        if not (rehash or file in changed or file != index.files[row]):
            continue  # same file, same size and time as when indexed
        hashed += 1
        if image_sha256(reader, row) != index.image_sha256[row]:
            raise SourceChangedError(
                f"{index.meta.get('data')} changed since indexing: the image of "
                f"{_where(reader, row)}, product {index.products[row]} ({file}) is not the one "
                "indexed; index it again"
            )
    return hashed


def check_source(index: Any, reader: Reader, rehash: bool = False) -> int:
    """Refuse a source that is not the one ``index`` was built from; see the module doc."""
    check_rows(index, reader)
    return check_images(index, reader, rehash)


def check_checkpoint(meta: dict[str, Any], given: str | os.PathLike[str] | None) -> Path:
    """The checkpoint to query with: ``given`` (``--checkpoint``) or the indexed one, refused
    unless its bytes are the ones the index was built with."""
    recorded, want = meta["checkpoint"], meta["checkpoint_sha256"]
    path = Path(given if given is not None else recorded).expanduser().resolve()
    if not path.is_file():
        where = "--checkpoint" if given is not None else "the index's checkpoint"
        raise FileNotFoundError(f"{where}: no file at {path} (indexed with {recorded})")
    got = file_sha256(path)
    if got == want:
        return path
    if given is not None:
        raise SourceChangedError(
            f"--checkpoint {path} (sha256 {got[:12]}) is not the checkpoint this index was built "
            f"with ({recorded}, sha256 {want[:12]}): leave --checkpoint out, or index again with it"
        )
    raise SourceChangedError(
        f"the checkpoint {path} changed since indexing (sha256 {got[:12]}, indexed "
        f"{want[:12]}): index again, or give --checkpoint with the file it was built with"
    )
