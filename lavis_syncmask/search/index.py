"""Build a search index: the ITC image feature of every row of a data source, written as it is
computed (memory O(N x d) for the features, never the images), plus what a query prints and
draws and what the index was built from. An index is a folder:

- ``features.npy``: ``(N, d)`` float32, L2-normalised ITC image features (``vision_proj`` of
  the ViT [CLS], as in the retrieval protocols);
- ``rows.jsonl``: per row ``{"product": id, "text": ..., "image_sha256": ..., "file": ...}``
  (``file``: the row's image file, catalogue tables only);
- ``index.json``: the checkpoint (path and SHA-256), the data source (absolute paths, its
  fingerprint and file stamps, see `fingerprint`), N, d, the model type, the index type, and
  the SHA-256 and stamp of ``features.npy`` and ``ann.faiss`` (``artifacts``);
- ``ann.faiss``: the approximate-search structure of an ``ivf`` or ``hnsw`` index (`ann`).

The index is written into a hidden sibling folder (``.NAME.partial-PID-*``) and renamed into
place only when complete: an interrupted run leaves the previous index as it was, and a
partial folder of a dead process is removed by the next run. Replacing an existing index is
two renames (old aside, new in); a kill between them leaves the old one at ``.NAME.old-*``,
which `query.SearchIndex.load` points at.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from lavis_syncmask.data.catalogue import CatalogueReader
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.search.ann import (
    ANN_FILE,
    CALIBRATION_QUERIES,
    INDEX_TYPES,
    build_ann,
    write_ann,
)
from lavis_syncmask.search.fingerprint import artifact_fingerprints, file_stamps, source_sha256
from lavis_syncmask.search.model import SearchModel
from lavis_syncmask.search.source import (
    ImageRows,
    file_sha256,
    product_keys,
    row_files,
    row_texts,
)

FEATURES_FILE = "features.npy"
ROWS_FILE = "rows.jsonl"
META_FILE = "index.json"
INDEX_VERSION = 2  # 2: source and checkpoint fingerprints
logger = logging.getLogger(__name__)


@torch.no_grad()
def image_itc_features(model: Any, images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` -> ``(B, d)`` normalised ITC features."""
    tokens = encode_image(model.visual_encoder, images.to(model.device))
    return F.normalize(model.vision_proj(tokens[:, 0]), dim=-1)


@torch.no_grad()
def text_itc_features(search: SearchModel, texts: list[str]) -> np.ndarray:
    """``(n, d)`` normalised ITC features of ``texts`` (each cleaned by the text processor)."""
    model = search.model
    tok = model.tokenize([search.text_processor(text) for text in texts])
    out = model.encode_text(tok.input_ids, tok.attention_mask).last_hidden_state
    return F.normalize(model.text_proj(out[:, 0]), dim=-1).cpu().numpy()


def calibration_queries(search: SearchModel, texts: list[str]) -> np.ndarray:
    """The ITC features of up to ``CALIBRATION_QUERIES`` evenly spread non-empty row texts:
    the text-to-image searches an index serves, for calibrating its ANN structure."""
    usable = [text for text in texts if text and text.strip()]
    picks = np.unique(np.linspace(0, len(usable) - 1, min(CALIBRATION_QUERIES, len(usable))))
    chosen = [usable[int(i)] for i in picks] if usable else []
    blocks = [text_itc_features(search, chosen[i : i + 64]) for i in range(0, len(chosen), 64)]
    return np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)


def check_replaceable(folder: Path) -> None:
    """``folder`` may be (re)written: absent, empty, or an index (never a user's other folder,
    whose files the atomic replace would delete)."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise FileExistsError(f"--out {folder} exists and is not a folder")
    if not (folder / META_FILE).is_file() and any(folder.iterdir()):
        raise FileExistsError(
            f"--out {folder} exists and is not a search index (no {META_FILE}); refusing to "
            "replace it: choose another --out or remove it"
        )


def _dead_leftover(path: Path) -> bool:
    """A ``.NAME.partial-PID-*`` / ``.NAME.old-PID-*`` folder whose process is gone."""
    try:
        pid = int(path.name.rsplit(".", 1)[1].split("-")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False  # someone else's live process
    return pid == os.getpid()


def remove_leftovers(folder: Path) -> None:
    """Delete partial folders of killed index runs into ``folder`` (and set-aside old indexes,
    once ``folder`` holds an index again); a live writer's are kept."""
    kinds = ["partial"] + (["old"] if (folder / META_FILE).is_file() else [])
    for kind in kinds:
        for path in folder.parent.glob(f".{folder.name}.{kind}-*"):
            if path.is_dir() and _dead_leftover(path):
                shutil.rmtree(path, ignore_errors=True)
                logger.warning("removed %s, left by an interrupted index run", path)


def replace_folder(new: Path, folder: Path) -> None:
    """Move the complete index ``new`` to ``folder``, replacing an index there."""
    if not folder.exists():
        os.rename(new, folder)
        return
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.rename(folder, old)
    try:
        os.rename(new, folder)
    except BaseException:
        os.rename(old, folder)
        raise
    if old.is_symlink():  # --out was a link: drop the link, never the folder it pointed at
        old.unlink()
    shutil.rmtree(old, ignore_errors=True)


def _write_features(
    search: SearchModel, reader: Any, folder: Path, batch_size: int, workers: int, progress: bool
) -> tuple[list[str], float]:
    """``features.npy`` of every row; returns each row's image SHA-256 and the seconds."""
    n, dim = len(reader), int(search.model.vision_proj.out_features)
    features = np.lib.format.open_memmap(
        folder / FEATURES_FILE, mode="w+", dtype=np.float32, shape=(n, dim)
    )
    digests = [""] * n
    loader = DataLoader(
        ImageRows(reader, search.vis_processor), batch_size=batch_size, num_workers=workers
    )
    start = time.perf_counter()
    for rows, images, hashes in tqdm(
        loader, disable=not progress, desc="index images", unit="batch"
    ):
        features[rows.numpy()] = image_itc_features(search.model, images).cpu().numpy()
        for row, digest in zip(rows.tolist(), hashes):
            digests[row] = digest
    seconds = time.perf_counter() - start
    features.flush()
    del features  # close the memmap before the metadata says the index is complete
    return digests, seconds


def _write_ann(folder: Path, index_type: str, queries: np.ndarray | None) -> dict[str, Any]:
    """``ann.faiss`` over the written features (see `ann`), its search breadth calibrated on
    ``queries``; its index.json entries."""
    if index_type == "exact":
        return {"index_type": "exact"}
    start = time.perf_counter()
    features = np.load(folder / FEATURES_FILE, mmap_mode="r")
    usable = queries if queries is not None and len(queries) else None
    ann, params = build_ann(features, index_type, queries=usable)
    write_ann(ann, folder)
    return {"index_type": index_type, "ann": params,
            "ann_seconds": round(time.perf_counter() - start, 3)}  # fmt: skip


def _write_index(
    search: SearchModel,
    reader: Any,
    folder: Path,
    data: dict[str, Any],
    index_type: str = "exact",
    **loader: Any,
) -> dict[str, Any]:
    files = row_files(reader)
    stamps = file_stamps(files)  # before reading: a file changed while indexed counts changed
    products, texts = product_keys(reader), row_texts(reader)
    digests, seconds = _write_features(search, reader, folder, **loader)
    queries = None if index_type == "exact" else calibration_queries(search, texts)
    catalogue = isinstance(reader, CatalogueReader)
    with open(folder / ROWS_FILE, "w", encoding="utf-8") as rows_file:
        for pid, text, digest, file in zip(products, texts, digests, files):
            row = {"product": pid, "text": text, "image_sha256": digest}
            rows_file.write(json.dumps(row | ({"file": file} if catalogue else {})) + "\n")
    meta = {
        "version": INDEX_VERSION,
        "checkpoint": str(search.checkpoint),
        "checkpoint_sha256": file_sha256(search.checkpoint),
        "model_type": search.model_type,
        "rows": len(reader),
        "dim": int(search.model.vision_proj.out_features),
        **{
            k: (str(Path(data[k]).expanduser().resolve()) if data.get(k) else None)
            for k in ("data", "images")
        },  # fmt: skip
        "on_bad_row": data.get("on_bad_row") or "error",
        "source": {"sha256": source_sha256(digests, texts, products), "files": stamps},
        "seconds": round(seconds, 3),
        **_write_ann(folder, index_type, queries),
    }
    written = [FEATURES_FILE] + ([ANN_FILE] if index_type != "exact" else [])
    meta["artifacts"] = artifact_fingerprints(folder, written)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def build_index(
    search: SearchModel,
    reader: Any,
    out: str | os.PathLike[str],
    data: dict[str, str | None],
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
    index_type: str = "exact",
) -> dict[str, Any]:
    """Index every row of ``reader`` into folder ``out`` (atomically, see the module doc);
    returns the ``index.json`` content. ``data``: how to reopen the source (``{"data": path,
    "images": folder or None, "on_bad_row": ...}``); ``index_type``: see `ann`."""
    if index_type not in INDEX_TYPES:
        raise ValueError(f"--index-type {index_type!r}: use one of {', '.join(INDEX_TYPES)}")
    folder = Path(out).expanduser().absolute()
    check_replaceable(folder)
    if len(reader) == 0:
        raise ValueError(f"{data.get('data')} has no rows: nothing to index")
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-{os.getpid()}-",
                                    dir=folder.parent))  # fmt: skip
    try:
        meta = _write_index(search, reader, partial, data, index_type, batch_size=batch_size,
                            workers=workers, progress=progress)  # fmt: skip
        replace_folder(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # killed, failed or interrupted: no half index
        raise
    remove_leftovers(folder)
    return meta
