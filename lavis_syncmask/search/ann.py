"""Approximate nearest-neighbour search for large catalogues, on FAISS (faiss-cpu).

FAISS is Meta's vector-search library: maintained since 2017, wheels on PyPI for every
platform, and both structures used here store the vectors uncompressed ("Flat"), so the
scores it returns are the exact cosine similarities of the rows it finds; only which rows it
looks at is approximate. ``--index-type``:

- ``exact`` (default): no ANN structure; every query scores all rows (``features @ q``);
- ``ivf``: ``IndexIVFFlat``, rows bucketed by k-means into ``nlist`` lists, ``nprobe`` of them
  searched per query;
- ``hnsw``: ``IndexHNSWFlat``, a navigable small-world graph (``M`` links per node,
  ``efSearch`` candidates per query). On 1,000,000 clustered synthetic features at 256-d it
  reached recall@10 0.26 at efSearch 128 and 0.83 at 2048, against 0.9995 for ``ivf``
  (`benchmarks/bench_ann.py`, docs/search.md): prefer ``ivf`` until trained features say
  otherwise.

The structure is written into the index folder as ``ann.faiss`` with the other files (so it
is replaced atomically with them), its type and parameters in ``index.json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

INDEX_TYPES = ("exact", "ivf", "hnsw")
ANN_FILE = "ann.faiss"
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128
IVF_PROBE_SHARE = 1 / 8  # nprobe = nlist / 8: recall@10 >= 0.95 on clustered features


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            "--index-type ivf|hnsw needs FAISS: pip install faiss-cpu (see constraints.txt)"
        ) from err
    return faiss


def ivf_params(rows: int) -> dict[str, int]:
    """``nlist`` about 4 sqrt(N) (FAISS's guideline), at most N / 39 so k-means has its 39
    training points per list; ``nprobe`` an eighth of the lists, at least 1."""
    nlist = max(1, min(int(4 * math.sqrt(rows)), rows // 39))
    return {"nlist": nlist, "nprobe": max(1, round(nlist * IVF_PROBE_SHARE))}


def build_ann(features: np.ndarray, kind: str, threads: int | None = None) -> tuple[Any, dict]:
    """The ANN structure of kind ``kind`` over ``(N, d)`` normalised features, and its
    parameters for ``index.json``; ``(None, {})`` for ``exact``."""
    if kind not in INDEX_TYPES:
        raise ValueError(f"--index-type {kind!r}: use one of {', '.join(INDEX_TYPES)}")
    if kind == "exact":
        return None, {}
    faiss = _faiss()
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    data = np.ascontiguousarray(features, dtype=np.float32)
    dim = data.shape[1]
    if kind == "hnsw":
        ann = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        ann.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        params = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
                  "ef_search": HNSW_EF_SEARCH}  # fmt: skip
    else:
        params = ivf_params(len(data))
        quantizer = faiss.IndexFlatIP(dim)
        ann = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        ann.train(data)
    ann.add(data)
    _configure(ann, kind, params)
    return ann, params


def _configure(ann: Any, kind: str, params: dict[str, int]) -> None:
    """Search-time settings (FAISS does not store them in the file)."""
    if kind == "hnsw":
        ann.hnsw.efSearch = params["ef_search"]
    else:
        ann.nprobe = params["nprobe"]


def write_ann(ann: Any, folder: Path) -> None:
    _faiss().write_index(ann, str(folder / ANN_FILE))


class AnnSearch:
    """A loaded ANN structure: ``search(query, pool)`` -> the rows and exact scores of (about)
    the ``pool`` best rows, best first."""

    def __init__(self, ann: Any, kind: str) -> None:
        self.ann, self.kind = ann, kind

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any]) -> AnnSearch:
        path = folder / ANN_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: index type {meta['index_type']} but no {ANN_FILE};"
                                    " index again")  # fmt: skip
        ann = _faiss().read_index(str(path))
        if ann.ntotal != meta["rows"]:
            raise ValueError(f"{path} holds {ann.ntotal} rows, {folder} {meta['rows']}; "
                             "index again")  # fmt: skip
        _configure(ann, meta["index_type"], meta.get("ann", {}))
        return cls(ann, meta["index_type"])

    def search(self, query: np.ndarray, pool: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.ann.search(query.reshape(1, -1).astype(np.float32), pool)
        found = rows[0] >= 0  # IVF returns -1 when the probed lists hold fewer than pool rows
        return rows[0][found], scores[0][found]


def load_ann(folder: Path, meta: dict[str, Any]) -> AnnSearch | None:
    """The index's ANN structure, or None for an exact index (or one written before them)."""
    kind = meta.get("index_type", "exact")
    if kind not in INDEX_TYPES:
        raise ValueError(f"{folder}: unknown index type {kind!r} in index.json; index again")
    return None if kind == "exact" else AnnSearch.load(folder, meta)
