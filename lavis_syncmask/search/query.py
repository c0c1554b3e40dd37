"""Answer a query against an index: encode the text (or image) into the ITC space, score every
row by cosine similarity (one ``(N, d) @ (d,)`` product), keep each product's best row, and
optionally re-rank the first ``rerank`` products with the ITM head (text queries only: ITM
scores a text against an image).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lavis_syncmask.data.images import load_rgb
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.search.ann import AnnSearch, load_ann
from lavis_syncmask.search.fingerprint import (
    check_artifacts,
    check_checkpoint,
    check_source,
    source_sha256,
)
from lavis_syncmask.search.index import (
    FEATURES_FILE,
    INDEX_VERSION,
    META_FILE,
    ROWS_FILE,
    image_itc_features,
    text_itc_features,
)
from lavis_syncmask.search.model import SearchModel, load_search_model
from lavis_syncmask.search.source import Reader, open_source


@dataclass
class Hit:
    row: int
    product: str
    text: str
    score: float  # ITC cosine similarity
    itm: float | None = None  # ITM match probability, when re-ranked


def _missing_index(path: Path) -> FileNotFoundError:
    """Not an index; names the previous index an index run killed mid-replace set aside."""
    aside = sorted(path.parent.glob(f".{path.name}.old-*"))
    if not path.exists() and aside:
        return FileNotFoundError(
            f"{path} does not exist, but an interrupted index run left the previous index at "
            f"{aside[-1]}: rename it to {path}, or index again"
        )
    return FileNotFoundError(
        f"{path} is not a search index (no {META_FILE}); build one with "
        "`python -m lavis_syncmask.search index`"
    )


@dataclass
class SearchIndex:
    folder: Path
    meta: dict[str, Any]
    features: np.ndarray  # (N, d) float32, normalised
    products: list[str]
    texts: list[str]
    image_sha256: list[str] = field(default_factory=list)  # per row, see `fingerprint`
    files: list[str] = field(default_factory=list)  # per row: the file its image came from
    ann: AnnSearch | None = None  # an ivf / hnsw index's structure (`ann`); None: exact

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> SearchIndex:
        path = Path(folder).expanduser()
        if not (path / META_FILE).is_file():
            raise _missing_index(path)
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        if meta.get("version") != INDEX_VERSION:
            raise ValueError(
                f"{path}: index version {meta.get('version')}, expected {INDEX_VERSION}; "
                "index it again"
            )
        if meta.get("rows") == 0:
            raise ValueError(f"{path} is an index of 0 rows: nothing to search; index a source "
                             "with rows")  # fmt: skip
        check_artifacts(path, meta)
        features = np.load(path / FEATURES_FILE)
        with open(path / ROWS_FILE, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
        if features.shape != (meta["rows"], meta["dim"]) or len(rows) != meta["rows"]:
            raise ValueError(f"{path}: features {features.shape} / {len(rows)} rows disagree "
                             f"with {META_FILE} ({meta['rows']} x {meta['dim']})")  # fmt: skip
        index = cls(path, meta, features, [r["product"] for r in rows], [r["text"] for r in rows],
                    [r.get("image_sha256", "") for r in rows],
                    [r.get("file", meta.get("data")) for r in rows],
                    load_ann(path, meta))  # fmt: skip
        index.check_fingerprint()
        return index

    def check_fingerprint(self) -> None:
        """``rows.jsonl`` is the one ``index.json`` fingerprinted (indexes with no recorded
        source, as the benchmark writes, are not checked)."""
        want = self.meta.get("source", {}).get("sha256")
        if want and source_sha256(self.image_sha256, self.texts, self.products) != want:
            raise ValueError(
                f"{self.folder}: {ROWS_FILE} does not match the source fingerprint in "
                f"{META_FILE}; the index was altered, index again"
            )


@torch.no_grad()
def text_query(search: SearchModel, text: str) -> np.ndarray:
    """``(d,)`` normalised ITC feature of ``text``; an empty query is an error."""
    cleaned = search.text_processor(text or "")
    if not cleaned.strip():
        raise ValueError("empty query: give --text with at least one word, or --image FILE")
    return text_itc_features(search, [text])[0]


def query_image(file: str | os.PathLike[str]) -> Image.Image:
    """The ``--image`` file decoded to RGB; a missing, empty, truncated or non-image file is a
    one-line error naming it (``TruncatedImageError`` is a ``ValueError``)."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--image: no file at {path}")
    return load_rgb(path)


def image_query(search: SearchModel, file: str | os.PathLike[str] | Image.Image) -> np.ndarray:
    """``(d,)`` normalised ITC feature of an image (a file or one already decoded)."""
    image = file if isinstance(file, Image.Image) else query_image(file)
    pixels = search.vis_processor(image).unsqueeze(0)
    return image_itc_features(search.model, pixels)[0].cpu().numpy()


def _ranked(
    index: SearchIndex, query: np.ndarray, pool: int, scores: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores of the ``pool`` best rows, best first: from the ANN structure, or
    exactly (all scores computed once into ``scores[0]`` and reused as the pool grows)."""
    n = len(index.products)
    if index.ann is not None and pool < n:
        return index.ann.search(query, pool)
    if not scores:
        scores.append(index.features @ query)
    top = np.argpartition(-scores[0], pool - 1)[:pool] if pool < n else np.arange(n)
    top = top[np.argsort(-scores[0][top], kind="stable")]
    return top, scores[0][top]


def top_products(index: SearchIndex, query: np.ndarray, k: int) -> list[Hit]:
    """The ``k`` best products (each by its best-scoring row), best first."""
    if k < 1:
        raise ValueError(f"--k must be >= 1, got {k}")
    if query.shape != (index.features.shape[1],):
        raise ValueError(f"query has {query.shape} features, the index {index.features.shape[1]}")
    query = query.astype(np.float32, copy=False)
    n, cache = len(index.products), []
    pool = min(n, 8 * k)  # several views per product: look a little deeper than k
    while True:
        rows, values = _ranked(index, query, pool, cache)
        best: dict[str, tuple[int, float]] = {}
        for row, value in zip(rows.tolist(), values.tolist()):
            best.setdefault(index.products[row], (row, value))
            if len(best) == k:
                break
        if len(best) == k or pool == n:
            break
        pool = min(n, pool * 4)
    return [Hit(r, p, index.texts[r], float(v)) for p, (r, v) in best.items()]


@torch.no_grad()
def rerank_itm(search: SearchModel, reader: Any, text: str, hits: list[Hit]) -> list[Hit]:
    """``hits`` ordered by the ITM probability that each hit's image matches ``text``."""
    if not hits:
        return hits
    model = search.model
    images = torch.stack(
        [search.vis_processor(Image.fromarray(reader.image(h.row))) for h in hits]
    ).to(model.device)
    image_embeds = encode_image(model.visual_encoder, images)
    tok = model.tokenize([search.text_processor(text)] * len(hits))
    text_embeds = model.encode_text(tok.input_ids, tok.attention_mask).last_hidden_state
    logits = model.itm_logits(text_embeds, tok.attention_mask, image_embeds).float()
    probs = F.softmax(logits, dim=-1)[:, 1].cpu().tolist()
    for hit, prob in zip(hits, probs):
        hit.itm = float(prob)
    return sorted(hits, key=lambda h: -h.itm)


def search_text(
    search: SearchModel, index: SearchIndex, reader: Any, text: str, k: int, rerank: int = 0
) -> list[Hit]:
    """The ``k`` best products for ``text``, the first ``rerank`` of them re-ranked by ITM."""
    hits = top_products(index, text_query(search, text), max(k, rerank))
    if rerank:
        hits = rerank_itm(search, reader, text, hits[:rerank]) + hits[rerank:]
    return hits[:k]


def open_searchable(
    folder: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    rehash: bool = False,
) -> tuple[SearchIndex, Reader, SearchModel]:
    """The index at ``folder``, its reopened source and the model, once the source and the
    checkpoint are checked to be the indexed ones (`fingerprint`; checked before the model
    loads, so a refused index costs no model load)."""
    index = SearchIndex.load(folder)
    meta = index.meta
    reader = open_source(meta["data"], meta.get("images"), meta.get("on_bad_row", "error"))
    check_source(index, reader, rehash=rehash)  # rows are addressed by position
    path = check_checkpoint(meta, checkpoint)
    model_type = meta.get("model_type") if meta.get("model_type") != "None" else None
    return index, reader, load_search_model(path, model_type, device)
