"""The FashionGen "full" retrieval protocol (benchmarks-and-data.md, "FashionGen retrieval
protocols"): every validation image row against one text per product, in O(N x k) memory.

LAVIS's `compute_sim_matrix` materialises the dense N x M ITC matrix and an N x M ITM score
matrix; at FashionGen scale (32k rows x ~10k texts, both directions) that is gigabytes. Here the
ITC search streams over blocks of queries AND gallery items keeping a running top-k, and the
optional ITM re-ranking only ever sees the (N, k) short list. A hit left outside the short list
counts as a miss (rank k).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from lavis_syncmask.evaluation.recall import (
    RETRIEVAL_KS,
    batched_pair_scores,
    bidirectional_recalls,
    rank_of_first_hit,
)

PairScorer = Callable[[Tensor, Tensor], Tensor]
KS = RETRIEVAL_KS


def check_feats(query_feats: Tensor, gallery_feats: Tensor) -> None:
    if query_feats.dim() != 2 or gallery_feats.dim() != 2:
        raise ValueError(
            f"features must be 2-D (N, D) and (M, D), got {tuple(query_feats.shape)} and "
            f"{tuple(gallery_feats.shape)}"
        )
    if query_feats.size(1) != gallery_feats.size(1):
        raise ValueError(
            f"feature widths differ: queries {query_feats.size(1)}, gallery {gallery_feats.size(1)}"
        )


@torch.no_grad()
def streaming_topk(
    query_feats: Tensor, gallery_feats: Tensor, k: int, chunk_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """Top-`k` dot-product scores of every query over the gallery, without the dense matrix.

    Queries and gallery are both cut into blocks of `chunk_size`; each block pair's top-k is
    merged into the running top-k of its queries, so peak extra memory is
    O(chunk_size^2 + N k) instead of O(N M). Normalise the features first for cosine scores.

    Args:
        query_feats: `(N, D)`.
        gallery_feats: `(M, D)`, on the same device.
        k: 1 <= k <= M.

    Returns:
        `(N, k)` scores sorted in descending order and the `(N, k)` int64 gallery indices they
        belong to (the order among exactly tied scores is unspecified, as for `torch.topk`).

    Example:
        >>> scores, index = streaming_topk(torch.randn(5, 8), torch.randn(7, 8), k=3, chunk_size=2)
        >>> index.shape
        torch.Size([5, 3])
    """
    check_feats(query_feats, gallery_feats)
    n, m = query_feats.size(0), gallery_feats.size(0)
    if not 1 <= k <= m:
        raise ValueError(f"k must be in [1, {m}] (the gallery size), got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if n == 0:
        empty = query_feats.new_zeros(0, k)
        return empty, empty.long()
    out_scores, out_index = [], []
    for q_start in range(0, n, chunk_size):
        queries = query_feats[q_start : q_start + chunk_size]
        best_scores: Tensor | None = None
        best_index: Tensor | None = None
        for g_start in range(0, m, chunk_size):
            block = queries @ gallery_feats[g_start : g_start + chunk_size].T
            scores, index = block.topk(min(k, block.size(1)), dim=1)
            index = index + g_start
            if best_scores is not None:
                scores = torch.cat([best_scores, scores], dim=1)
                index = torch.cat([best_index, index], dim=1)
                scores, keep = scores.topk(min(k, scores.size(1)), dim=1)
                index = index.gather(1, keep)
            best_scores, best_index = scores, index
        out_scores.append(best_scores)
        out_index.append(best_index)
    return torch.cat(out_scores), torch.cat(out_index)


def rerank_topk(
    topk_indices: Tensor, score_pairs: PairScorer, batch_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """Re-rank each query's short list with a pair scorer (ITM).

    Args:
        topk_indices: `(N, k)` gallery indices of each query's short list (e.g. from
            `streaming_topk`).
        score_pairs: `(query indices (n,), gallery indices (n,)) -> (n,)` scores, higher =
            better; called on the CPU index tensors in batches of `batch_size` pairs.

    Returns:
        `(N, k)` float64 scores sorted in descending order and the `(N, k)` gallery indices in
        that re-ranked order. The sort is stable, so ITM ties keep the short-list order.
    """
    if topk_indices.dim() != 2:
        raise ValueError(f"topk_indices must be (N, k), got {tuple(topk_indices.shape)}")
    n, k = topk_indices.shape
    index = topk_indices.detach().cpu().long()
    queries = torch.arange(n).repeat_interleave(k)
    scores = batched_pair_scores(score_pairs, queries, index.flatten(), batch_size).view(n, k)
    scores, order = scores.sort(dim=1, descending=True, stable=True)
    return scores, index.gather(1, order)


def _ranks(
    query_feats: Tensor,
    gallery_feats: Tensor,
    k: int,
    is_hit: Callable[[Tensor], Tensor],
    itm: PairScorer | None,
    chunk_size: int,
    itm_batch_size: int,
) -> Tensor:
    """`(Q,)` rank of each query's best hit within its top-k (k when no hit made the list)."""
    scores, index = streaming_topk(query_feats, gallery_feats, k, chunk_size)
    scores, index = scores.detach().cpu(), index.cpu()
    if itm is not None:
        scores, index = rerank_topk(index, itm, itm_batch_size)
    return rank_of_first_hit(scores, is_hit(index))


def as_row_product(row_product: np.ndarray, n_rows: int, n_texts: int) -> Tensor:
    rp = np.asarray(row_product)
    if rp.shape != (n_rows,) or not np.issubdtype(rp.dtype, np.integer):
        raise ValueError(
            f"row_product must be an integer ({n_rows},) array, got {rp.dtype} {rp.shape}"
        )
    if n_rows and (rp.min() < 0 or rp.max() >= n_texts):
        raise ValueError(
            f"row_product values must index the {n_texts} texts, got [{rp.min()}, {rp.max()}]"
        )
    textless = np.setdiff1d(np.arange(n_texts), rp)
    if textless.size:
        raise ValueError(
            f"{textless.size} text(s) have no image row and can never be retrieved, "
            f"e.g. text indices {textless[:5].tolist()}"
        )
    return torch.as_tensor(rp, dtype=torch.long)


def check_protocol_inputs(
    image_feats: Tensor,
    text_feats: Tensor,
    row_product: np.ndarray,
    k_test: int,
    has_itm_i2t: bool,
    has_itm_t2i: bool,
) -> tuple[Tensor, int, int]:
    """Validate the full protocol's inputs (shared by the one-process and sharded versions);
    returns the row -> product-text tensor and the short-list lengths `k_i2t`, `k_t2i`."""
    check_feats(image_feats, text_feats)
    n, m = image_feats.size(0), text_feats.size(0)
    if n == 0:
        raise ValueError("image_feats is empty")
    rp = as_row_product(row_product, n, m)
    if has_itm_i2t != has_itm_t2i:
        raise ValueError("give both itm_i2t and itm_t2i (ITM re-ranking) or neither (ITC only)")
    if k_test < max(KS):
        raise ValueError(f"k_test must be >= {max(KS)} to measure R@{max(KS)}, got {k_test}")
    return rp, min(k_test, m), min(k_test, n)


def full_retrieval(
    image_feats: Tensor,
    text_feats: Tensor,
    row_product: np.ndarray,
    *,
    k_test: int,
    itm_i2t: PairScorer | None = None,
    itm_t2i: PairScorer | None = None,
    chunk_size: int = 1024,
    itm_batch_size: int = 1024,
) -> dict:
    """Full FashionGen retrieval: R@1/5/10 for image-to-text and text-to-image.

    Args:
        image_feats: `(N, D)` ITC features of every validation image row.
        text_feats: `(M, D)` ITC features of one text per product.
        row_product: `(N,)` index into `text_feats` of each row's product text.
        k_test: short-list length per query (clamped to the gallery size); must be >= 10.
        itm_i2t: `(image rows (n,), text indices (n,)) -> (n,)` ITM scores; `itm_t2i` takes
            `(text indices (n,), image rows (n,))`. Give both (scoring "itc+itm": the ITC top-k
            is re-ranked by ITM) or neither (scoring "itc").

    Returns:
        `i2t_r1, i2t_r5, i2t_r10, i2t_r_mean` (hit = the row's product text), `t2i_*` (hit = ANY
        view of the product), `r_mean`, `scoring`, `k_i2t`, `k_t2i`, `n_images`, `n_texts`.
    """
    rp, k_i2t, k_t2i = check_protocol_inputs(
        image_feats, text_feats, row_product, k_test, itm_i2t is not None, itm_t2i is not None
    )
    text_ids = torch.arange(text_feats.size(0))
    i2t = _ranks(
        image_feats,
        text_feats,
        k_i2t,
        lambda idx: idx == rp[:, None],
        itm_i2t,
        chunk_size,
        itm_batch_size,
    )
    t2i = _ranks(
        text_feats,
        image_feats,
        k_t2i,
        lambda idx: rp[idx] == text_ids[:, None],
        itm_t2i,
        chunk_size,
        itm_batch_size,
    )
    return retrieval_metrics(i2t, t2i, itm_i2t is not None, k_i2t, k_t2i)


def retrieval_metrics(i2t: Tensor, t2i: Tensor, itm: bool, k_i2t: int, k_t2i: int) -> dict:
    """The protocol's metrics dict from `(N,)` image-to-text and `(M,)` text-to-image ranks."""
    metrics: dict = bidirectional_recalls(i2t, t2i, KS)
    metrics.update(
        scoring="itc+itm" if itm else "itc",
        k_i2t=k_i2t,
        k_t2i=k_t2i,
        n_images=len(i2t),
        n_texts=len(t2i),
    )
    return metrics
