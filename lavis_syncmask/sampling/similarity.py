"""Text similarity for the semi-hard batch sampler (method.md section 4, [ours]).

Similarity is the cosine of TF-IDF vectors of the deduplicated texts (or, after a refresh, of
the momentum model's ITC text embeddings). FashionGen has 260k rows but only ~68k distinct
texts, and the sampler only needs neighbours inside a subcategory, so no dense N x N matrix is
ever built: each subcategory is processed in row blocks, keeping per text

- its `num_neighbours` most similar texts inside the semi-hard band `(sim_lower, sim_upper)`;
- its near-duplicates (similarity >= `sim_upper`), which must never share its batch.

Cross-subcategory near-duplicates are not in these lists (nor, for a text with more than
`2 * num_neighbours` near-duplicates, all of its own); the packer checks batches that mix
subcategories or hold such a text with exact similarities (`pair_similarity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "Features",
    "NeighbourTable",
    "build_neighbours",
    "deduplicate_texts",
    "embedding_features",
    "pair_similarity",
    "tfidf_features",
]

#: L2-normalised vectors, one row per distinct text: sparse TF-IDF or dense embeddings.
Features = sp.csr_matrix | np.ndarray

# Rows of a subcategory multiplied at once; a block costs block x group_size float32.
_BLOCK_ROWS = 256


@dataclass(frozen=True)
class NeighbourTable:
    """Per-text neighbour lists in CSR layout (text `t` owns `idx[ptr[t]:ptr[t + 1]]`).

    `band_*`: semi-hard neighbours, similarity in `(sim_lower, sim_upper)`, most similar first.
    `dup_*`: near-duplicates (similarity >= `sim_upper`), symmetric, self excluded.
    """

    band_ptr: np.ndarray  # (T + 1,) int64
    band_idx: np.ndarray  # (nnz,) int32
    band_sim: np.ndarray  # (nnz,) float32
    dup_ptr: np.ndarray  # (T + 1,) int64
    dup_idx: np.ndarray  # (nnz_dup,) int32
    # (T,) bool: False where the text may have more near-duplicates than the list holds.
    dup_complete: np.ndarray

    @property
    def num_texts(self) -> int:
        return len(self.band_ptr) - 1


def deduplicate_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in order of first appearance, and `(N,)` int64 text id of every row.

    Example: `deduplicate_texts(["a", "b", "a"]) == (["a", "b"], array([0, 1, 0]))`.
    """
    ids: dict[str, int] = {}
    text_ids = np.fromiter(
        (ids.setdefault(str(t), len(ids)) for t in texts), dtype=np.int64, count=len(texts)
    )
    return list(ids), text_ids


def tfidf_features(unique_texts: Sequence[str]) -> sp.csr_matrix:
    """`(T, V)` float32 CSR matrix of L2-normalised TF-IDF vectors (scikit-learn defaults).

    A text without any token gets a zero row (similarity 0 to everything).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        matrix = TfidfVectorizer(dtype=np.float32).fit_transform(unique_texts)
    except ValueError as err:  # sklearn: "empty vocabulary"
        raise ValueError(
            f"cannot build TF-IDF vectors: the texts contain no words ({err})"
        ) from err
    return sp.csr_matrix(matrix, dtype=np.float32)


def embedding_features(embeddings: np.ndarray, text_ids: np.ndarray, num_texts: int) -> np.ndarray:
    """Average the `(N, D)` per-row embeddings over rows of one text, then L2-normalise.

    Returns `(T, D)` float32; a text whose mean embedding is zero keeps a zero row.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(text_ids):
        raise ValueError(
            f"embeddings must have shape (N, D) with N = {len(text_ids)} rows, "
            f"got {tuple(emb.shape)}"
        )
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinite values")
    # Rows of one text may differ (dropout in the momentum model): average them.
    ones = np.ones(len(text_ids), dtype=np.float32)
    pool = sp.csr_matrix((ones, (text_ids, np.arange(len(text_ids)))), shape=(num_texts, len(ones)))
    mean = np.asarray(pool @ emb, dtype=np.float32)
    norm = np.linalg.norm(mean, axis=1, keepdims=True)
    return mean / np.maximum(norm, 1e-12)


def _compact_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Dense `(len(rows), C)` copy of some CSR rows over only the `C` columns they use.

    Row slicing and sparse products in scipy cost ~1 ms of overhead each; gathering the few
    non-zeros with numpy is ~10x faster for the batch-sized checks the packer runs.
    """
    starts, stops = matrix.indptr[rows], matrix.indptr[rows + 1]
    counts = stops - starts
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    nnz = offsets + np.arange(counts.sum())
    cols, col_index = np.unique(matrix.indices[nnz], return_inverse=True)
    dense = np.zeros((len(rows), len(cols)), dtype=np.float32)
    dense[np.repeat(np.arange(len(rows)), counts), col_index] = matrix.data[nnz]
    return dense


def pair_similarity(features: Features, texts_a: np.ndarray, texts_b: np.ndarray) -> np.ndarray:
    """Exact cosine similarity `(A, B)` float32 between the texts `texts_a` and `texts_b`."""
    texts_a, texts_b = np.asarray(texts_a, dtype=np.int64), np.asarray(texts_b, dtype=np.int64)
    if sp.issparse(features):
        dense = _compact_rows(features, np.concatenate([texts_a, texts_b]))
        return dense[: len(texts_a)] @ dense[len(texts_a) :].T
    return np.asarray(features[texts_a] @ features[texts_b].T, dtype=np.float32)


def _group_matrix(features: Features, texts: np.ndarray) -> Features:
    """The group's rows with the vocabulary restricted to the columns it uses."""
    rows = features[texts]
    if not sp.issparse(rows):
        return np.ascontiguousarray(rows, dtype=np.float32)
    rows = sp.csr_matrix(rows)
    used = np.unique(rows.indices)
    return sp.csr_matrix(rows[:, used])


def _block_similarity(matrix: Features, start: int, stop: int) -> np.ndarray:
    """Similarity `(stop - start, n)` of rows `start:stop` to all `n` rows of the group."""
    if sp.issparse(matrix):
        # sparse @ dense is much faster than sparse @ sparse when the product is dense.
        dense_block = matrix[start:stop].T.toarray()
        return np.ascontiguousarray((matrix @ dense_block).T, dtype=np.float32)
    return matrix[start:stop] @ matrix.T


def _group_candidates(
    matrix: Features, texts: np.ndarray, sim_lower: float, sim_upper: float, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(source, target, similarity) of each text's `keep` most similar texts above `sim_lower`,
    and the texts whose `keep` candidates are all near-duplicates (so the list may miss some)."""
    n = len(texts)
    keep = min(keep, n - 1)
    if keep <= 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32), empty
    sources, targets, sims, saturated = [], [], [], []
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        block = _block_similarity(matrix, start, stop)
        local = np.arange(stop - start)
        block[local, start + local] = -np.inf  # a text is not its own neighbour
        top = np.argpartition(block, n - keep, axis=1)[:, n - keep :]
        top_sim = np.take_along_axis(block, top, axis=1)
        hit = top_sim > sim_lower
        sources.append(texts[start + np.nonzero(hit)[0]])
        targets.append(texts[top[hit]])
        sims.append(top_sim[hit])
        if keep < n - 1:
            full = (top_sim >= sim_upper).all(axis=1)
            saturated.append(texts[start + np.flatnonzero(full)])
    cat = np.concatenate
    return cat(sources), cat(targets), cat(sims), cat(saturated + [np.empty(0, np.int64)])


def _to_csr(
    sources: np.ndarray, targets: np.ndarray, sims: np.ndarray, num_texts: int, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicated (source, target) lists, most similar first, at most `limit` per source."""
    order = np.lexsort((-sims, targets, sources))
    sources, targets, sims = sources[order], targets[order], sims[order]
    first = np.ones(len(sources), dtype=bool)
    first[1:] = (sources[1:] != sources[:-1]) | (targets[1:] != targets[:-1])
    sources, targets, sims = sources[first], targets[first], sims[first]
    order = np.lexsort((-sims, sources))
    sources, targets, sims = sources[order], targets[order], sims[order]
    counts = np.bincount(sources, minlength=num_texts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(sources)) - np.repeat(starts, counts)
    kept = rank < limit
    sources, targets, sims = sources[kept], targets[kept], sims[kept]
    ptr = np.zeros(num_texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(sources, minlength=num_texts), out=ptr[1:])
    return ptr, targets.astype(np.int32), sims.astype(np.float32)


def build_neighbours(
    features: Features,
    text_groups: Sequence[np.ndarray],
    *,
    sim_lower: float,
    sim_upper: float,
    num_neighbours: int,
) -> NeighbourTable:
    """Semi-hard and near-duplicate neighbour lists, computed inside each group only.

    Args:
        features: `(T, V)` sparse or `(T, D)` dense L2-normalised rows, one per distinct text.
        text_groups: for every group (subcategory), the distinct text ids that occur in it.
        sim_lower, sim_upper: the semi-hard band; `>= sim_upper` marks a near-duplicate.
        num_neighbours: band neighbours kept per text (the top `M`).

    Cost: `sum_g n_g^2` similarities in blocks of `256 x n_g`; memory `O(T * M)`.
    """
    num_texts = features.shape[0]
    # Keep extra candidates so near-duplicates do not crowd the band out of the top list.
    keep = 2 * num_neighbours
    parts = [
        _group_candidates(_group_matrix(features, g), g, sim_lower, sim_upper, keep)
        for g in text_groups
        if len(g) > 1
    ]
    sources = np.concatenate([p[0] for p in parts] + [np.empty(0, dtype=np.int64)])
    targets = np.concatenate([p[1] for p in parts] + [np.empty(0, dtype=np.int64)])
    sims = np.concatenate([p[2] for p in parts] + [np.empty(0, dtype=np.float32)])
    band = sims < sim_upper
    band_ptr, band_idx, band_sim = _to_csr(
        sources[band], targets[band], sims[band], num_texts, num_neighbours
    )
    dup = ~band
    # Symmetric: a pair is blocked whichever of the two texts enters the batch first.
    dup_src = np.concatenate([sources[dup], targets[dup]])
    dup_dst = np.concatenate([targets[dup], sources[dup]])
    dup_sims = np.concatenate([sims[dup], sims[dup]])
    dup_ptr, dup_idx, _ = _to_csr(dup_src, dup_dst, dup_sims, num_texts, 2 * keep)
    dup_complete = np.diff(dup_ptr) < 2 * keep
    dup_complete[np.concatenate([p[3] for p in parts] + [np.empty(0, np.int64)])] = False
    return NeighbourTable(band_ptr, band_idx, band_sim, dup_ptr, dup_idx, dup_complete)
