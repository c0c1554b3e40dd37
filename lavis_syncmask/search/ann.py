"""Approximate nearest-neighbour search for large catalogues, on FAISS (faiss-cpu).

FAISS is Meta's vector-search library: maintained since 2017, wheels on PyPI for every
platform, and both structures used here store the vectors uncompressed ("Flat"), so the
scores it returns are the exact cosine similarities of the rows it finds; only which rows it
looks at is approximate. ``--index-type``:

- ``exact`` (default): no ANN structure; every query scores all rows (``features @ q``);
- ``ivf``: ``IndexIVFFlat``, rows bucketed by k-means into ``nlist`` lists, ``nprobe`` of them
  searched per query;
- ``hnsw``: ``IndexHNSWFlat``, a navigable small-world graph (``M`` links per node,
  ``efSearch`` candidates per query).

How many lists (``nprobe``) or candidates (``efSearch``) a query visits is set when the index
is built, by measurement on the catalogue itself (`calibrate`): the smallest setting of a
ladder whose recall@10 against exact search reaches ``RECALL_TARGET`` (0.95) over up to 200
queries: the index passes its catalogue's own texts, the searches it will serve. The setting and the recall it measured go into
``index.json``; a catalogue that misses the target at the ladder's top keeps the top and says
so. A fixed default cannot do this: on 1,000,000 clustered synthetic features at 256-d, HNSW at
efSearch 128 found 0.26 of the top 10 and needed more than 2048 for 0.95
(`benchmarks/bench_ann.py`, docs/search.md), while on a small catalogue 128 is plenty.

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
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 200
RECALL_TARGET = 0.95
#: The search-time breadths `calibrate` tries, smallest first: HNSW's efSearch, and IVF's
#: nprobe as a share of its lists.
EF_LADDER = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
PROBE_LADDER = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
CALIBRATION_QUERIES = 200


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
    training points per list."""
    return {"nlist": max(1, min(int(4 * math.sqrt(rows)), rows // 39))}


def build_ann(
    features: np.ndarray,
    kind: str,
    threads: int | None = None,
    queries: np.ndarray | None = None,
) -> tuple[Any, dict]:
    """The ANN structure of kind ``kind`` over ``(N, d)`` normalised features, its search
    breadth calibrated with ``queries`` (see `calibrate`), and its parameters for
    ``index.json``; ``(None, {})`` for ``exact``."""
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
        params: dict[str, Any] = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
    else:
        params = ivf_params(len(data))
        quantizer = faiss.IndexFlatIP(dim)
        ann = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        ann.train(data)
    ann.add(data)
    return ann, {**params, **calibrate(ann, kind, data, params, queries)}


def _breadths(kind: str, params: dict[str, Any], rows: int) -> list[int]:
    if kind == "hnsw":
        return [ef for ef in EF_LADDER if ef < rows] + [min(rows, EF_LADDER[-1])]
    nlist = params["nlist"]
    return sorted({max(1, round(nlist * share)) for share in PROBE_LADDER})


def calibrate(
    ann: Any,
    kind: str,
    data: np.ndarray,
    params: dict[str, Any],
    queries: np.ndarray | None = None,
    k: int = 10,
) -> dict[str, Any]:
    """The smallest search-time breadth (``ef_search`` or ``nprobe``) whose recall@k against
    exact search reaches ``RECALL_TARGET``; the ladder's top when none does. Measured with
    ``queries`` (the index passes its catalogue's own texts: the text-to-image searches it will
    serve), else with up to ``CALIBRATION_QUERIES`` evenly spread rows of ``data``, each left
    out of its own neighbours. Leaves ``ann`` configured with the breadth chosen."""
    rows, key = len(data), ("ef_search" if kind == "hnsw" else "nprobe")
    own_rows = queries is None
    if own_rows:
        own = np.unique(np.linspace(0, rows - 1, min(CALIBRATION_QUERIES, rows)).astype(np.int64))
        queries, exclude = data[own], own.tolist()
    else:
        exclude = [-1] * len(queries)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, rows - (1 if own_rows else 0))
    if k < 1 or len(queries) == 0:  # nothing to find
        _configure(ann, kind, {key: 1})
        return {key: 1, "calibrated_recall": 1.0}
    truth: list[list[int]] = []
    for start in range(0, len(queries), 64):  # exact top k + 1, in blocks of queries
        scores = np.asarray(data @ queries[start : start + 64].T).T
        top = np.argpartition(-scores, min(k, rows - 1), axis=1)[:, : k + 1]  # no full sort
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        truth.extend(np.take_along_axis(top, order, axis=1).tolist())
    for breadth in _breadths(kind, params, rows):
        _configure(ann, kind, {key: breadth})
        found = ann.search(queries, k + 1)[1].tolist()
        recall = round(float(np.mean([_overlap(q, f, t, k)
                                      for q, f, t in zip(exclude, found, truth)])), 4)  # fmt: skip
        if recall >= RECALL_TARGET:
            break
    return {key: breadth, "calibrated_recall": recall}


def _overlap(query_row: int, found: list[int], truth: list[int], k: int) -> float:
    """The share of the exact top k among the k found (``query_row``, when a row of the index
    is the query, left out of both)."""
    found_k = [r for r in found if r != query_row][:k]
    truth_k = [r for r in truth if r != query_row][:k]
    return len(set(found_k) & set(truth_k)) / k


def _configure(ann: Any, kind: str, params: dict[str, Any]) -> None:
    """Search-time settings (FAISS does not store them in the file)."""
    if kind == "hnsw":
        ann.hnsw.efSearch = int(params["ef_search"])
    else:
        ann.nprobe = int(params["nprobe"])


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
