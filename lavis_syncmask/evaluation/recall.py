"""Ranks and Recall@K, the metric shared by every retrieval protocol (benchmarks-and-data.md:
FashionGen sample-100 / full retrieval, FashionIQ TGIR).

A query's rank is the 0-based position of its best-ranked correct candidate ("hit"); R@K is the
share of queries whose rank is below K. Ties are broken pessimistically so that a constant
scorer cannot look good: a hit tied with a non-hit counts as ranked after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

#: FashionGen image-text retrieval cut-offs (both protocols, as ALBEF / FashionViL report).
RETRIEVAL_KS: tuple[int, ...] = (1, 5, 10)
#: FashionIQ text-guided image retrieval cut-offs.
TGIR_KS: tuple[int, ...] = (10, 50)
#: The keys `bidirectional_recalls` writes for `RETRIEVAL_KS`, plus their mean.
RETRIEVAL_KEYS: tuple[str, ...] = (
    *(f"{d}_r{k}" for d in ("i2t", "t2i") for k in RETRIEVAL_KS),
    "r_mean",
)


def rank_of_first_hit(scores: Tensor, hits: Tensor) -> Tensor:
    """0-based rank of the best-ranked hit of each query.

    Args:
        scores: `(Q, C)` score of each query against each of its candidates (higher is better).
        hits: `(Q, C)` bool, True where the candidate is a correct answer for the query.

    Returns:
        `(Q,)` int64 ranks. The rank of query q is the number of non-hit candidates whose score
        is >= its best hit's score (pessimistic ties: a hit tied with a non-hit is ranked after
        it; ties among hits do not matter). A query with no hit among its C candidates gets
        rank C, i.e. a miss at every K <= C (used for hits left outside a top-k short list).

    Example:
        >>> rank_of_first_hit(torch.tensor([[0.9, 0.5, 0.5]]), torch.tensor([[False, True, False]]))
        tensor([2])
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be (Q, C), got shape {tuple(scores.shape)}")
    if hits.shape != scores.shape:
        raise ValueError(
            f"hits shape {tuple(hits.shape)} does not match scores shape {tuple(scores.shape)}"
        )
    if hits.dtype != torch.bool:
        raise ValueError(f"hits must be a bool tensor, got {hits.dtype}")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; ranks would be meaningless")
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    best_hit = torch.where(hits, scores, neg_inf).amax(dim=1, keepdim=True)
    # A row with no hit has best_hit = -inf, so every candidate counts and its rank is C.
    return ((scores >= best_hit) & ~hits).sum(dim=1)


def recall_at_k(ranks: Tensor, ks: Iterable[int] = RETRIEVAL_KS) -> dict[str, float]:
    """Recall@K in percent from `(Q,)` 0-based ranks: keys `r{K}`, e.g. `{"r1": 50.0, ...}`.

    Example:
        >>> recall_at_k(torch.tensor([0, 3, 12]), ks=(1, 5))
        {'r1': 33.33333333333333, 'r5': 66.66666666666666}
    """
    ks = tuple(ks)
    if ranks.dim() != 1 or ranks.numel() == 0:
        raise ValueError(f"ranks must be a non-empty (Q,) tensor, got shape {tuple(ranks.shape)}")
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks}")
    ranks = ranks.detach().cpu()
    return {f"r{int(k)}": 100.0 * (ranks < int(k)).double().mean().item() for k in ks}


PairScorer = Callable[[Tensor, Tensor], Tensor]


@torch.no_grad()
def batched_pair_scores(
    score_pairs: PairScorer, first: Tensor, second: Tensor, batch_size: int = 1024
) -> Tensor:
    """Call `score_pairs(first[i:j], second[i:j]) -> (j - i,)` over `(n,)` index tensors in
    batches of `batch_size` and return the `(n,)` scores as float64 on the CPU.

    float64 so that close ITM probabilities are not merged into ties by a downcast.
    """
    if first.shape != second.shape or first.dim() != 1:
        raise ValueError(
            f"pair indices must be two (n,) tensors, got {tuple(first.shape)} and "
            f"{tuple(second.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = []
    for start in range(0, first.numel(), batch_size):
        a, b = first[start : start + batch_size], second[start : start + batch_size]
        scores = score_pairs(a, b)
        if not torch.is_tensor(scores) or scores.shape != a.shape:
            got = tuple(scores.shape) if torch.is_tensor(scores) else type(scores).__name__
            raise ValueError(f"score_pairs must return a ({a.numel()},) tensor, got {got}")
        out.append(scores.detach().to("cpu", torch.float64))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def bidirectional_recalls(
    i2t_ranks: Tensor, t2i_ranks: Tensor, ks: Iterable[int] = RETRIEVAL_KS
) -> dict[str, float]:
    """The LAVIS-style retrieval summary from `(Q1,)` image-to-text and `(Q2,)` text-to-image
    ranks: `i2t_r{K}`, `i2t_r_mean`, `t2i_r{K}`, `t2i_r_mean` and `r_mean` (mean of the two
    directional means), all in percent."""
    metrics: dict[str, float] = {}
    for name, ranks in (("i2t", i2t_ranks), ("t2i", t2i_ranks)):
        recalls = recall_at_k(ranks, ks)
        metrics.update({f"{name}_{key}": value for key, value in recalls.items()})
        metrics[f"{name}_r_mean"] = sum(recalls.values()) / len(recalls)
    metrics["r_mean"] = (metrics["i2t_r_mean"] + metrics["t2i_r_mean"]) / 2
    return metrics
