"""The full retrieval protocol sharded by rank (issue 10, item 5): on W processes each rank
encodes 1/W of the image rows and keeps only their ViT tokens, and the ITM re-ranking of both
directions is split by which rank owns each pair's image row.

How one evaluation runs, given every rank's ITC features all-gathered (`(N, D)` and `(M, D)`,
small) and a pair scorer that can read only its own rows' tokens:
1. each rank computes the ITC short lists of its own queries (its image rows for image -> text,
   its slice of the texts for text -> image) and the short lists are all-gathered;
2. each rank scores, with ITM, the short-list pairs whose image row it owns, in both directions;
3. a sum over ranks (every pair is scored by exactly one rank, zeros elsewhere) gives every
   rank the same `(N, k)` and `(M, k)` ITM scores, from which the ranks and recalls follow.
In one process (or without a process group) it is exactly `full_retrieval`'s computation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from lavis_syncmask.common.distributed import collective_device, get_rank, get_world_size
from lavis_syncmask.evaluation.full_retrieval import (
    PairScorer,
    check_protocol_inputs,
    retrieval_metrics,
    streaming_topk,
)
from lavis_syncmask.evaluation.recall import batched_pair_scores, rank_of_first_hit


def shard_range(n: int, rank: int | None = None, world: int | None = None) -> range:
    """The contiguous slice of `range(n)` that `rank` of `world` owns (sizes differ by <= 1).

    >>> [list(shard_range(5, r, 2)) for r in range(2)]
    [[0, 1, 2], [3, 4]]
    """
    rank = get_rank() if rank is None else rank
    world = get_world_size() if world is None else world
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in [0, {world})")
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and get_world_size() > 1


@torch.no_grad()
def gather_rows(local: Tensor) -> Tensor:
    """Concatenate every rank's `(n_r, ...)` tensor along dim 0 in rank order (n_r may differ
    between ranks); the tensor itself in one process. Result on `local`'s device."""
    if not _distributed():
        return local
    device = collective_device()
    count = torch.tensor([local.size(0)], device=device)
    counts = [torch.zeros_like(count) for _ in range(get_world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    padded = local.new_zeros((max(sizes), *local.shape[1:])).to(device)
    padded[: local.size(0)] = local.to(device)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)]).to(local.device)


def _sum_over_ranks(values: Tensor) -> Tensor:
    if not _distributed():
        return values
    buffer = values.to(collective_device())
    dist.all_reduce(buffer)
    return buffer.to(values.device)


def _owned_pair_scores(
    index: Tensor, owner_rows: Tensor, own: range, score: PairScorer, batch_size: int
) -> Tensor:
    """`(Q, k)` float64: ITM scores of the short-list pairs `index` whose image row
    (`owner_rows`, same shape) is in `own`, zeros elsewhere."""
    queries = torch.arange(index.size(0)).repeat_interleave(index.size(1))
    rows = owner_rows.flatten()
    mine = (rows >= own.start) & (rows < own.stop)
    out = torch.zeros(index.numel(), dtype=torch.float64)
    if mine.any():
        out[mine] = batched_pair_scores(score, queries[mine], index.flatten()[mine], batch_size)
    return out.view_as(index)


def _sharded_ranks(
    queries: Tensor,
    gallery: Tensor,
    k: int,
    own_queries: range,
    image_rows_of: Callable[[Tensor], Tensor],
    own_rows: range,
    is_hit: Callable[[Tensor], Tensor],
    itm: PairScorer | None,
    chunk_size: int,
    itm_batch_size: int,
) -> Tensor:
    scores, index = streaming_topk(
        queries[own_queries.start : own_queries.stop], gallery, k, chunk_size
    )
    scores, index = gather_rows(scores.cpu()), gather_rows(index.cpu())
    if itm is not None:
        owned = _owned_pair_scores(index, image_rows_of(index), own_rows, itm, itm_batch_size)
        scores = _sum_over_ranks(owned)
        scores, order = scores.sort(dim=1, descending=True, stable=True)
        index = index.gather(1, order)
    return rank_of_first_hit(scores, is_hit(index))


def sharded_full_retrieval(
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
    """`full_retrieval`'s metrics computed by every rank of the process group together.

    Args:
        image_feats, text_feats: `(N, D)` and `(M, D)` ITC features of ALL rows and texts (e.g.
            each rank's part joined with :func:`gather_rows`), the same on every rank.
        itm_i2t, itm_t2i: as in `full_retrieval`, but called only with this rank's image rows
            `shard_range(N)` (whose ViT tokens it holds): `itm_i2t(rows, texts)`,
            `itm_t2i(texts, rows)`.
        Others as in `full_retrieval`. Every rank must call it; every rank returns the metrics.
    """
    rp, k_i2t, k_t2i = check_protocol_inputs(
        image_feats, text_feats, row_product, k_test, itm_i2t is not None, itm_t2i is not None
    )
    n, m = image_feats.size(0), text_feats.size(0)
    own_rows, text_ids = shard_range(n), torch.arange(m)
    i2t = _sharded_ranks(
        image_feats,
        text_feats,
        k_i2t,
        own_rows,
        lambda index: torch.arange(n)[:, None].expand_as(index),
        own_rows,
        lambda index: index == rp[:, None],
        itm_i2t,
        chunk_size,
        itm_batch_size,
    )
    t2i = _sharded_ranks(
        text_feats,
        image_feats,
        k_t2i,
        shard_range(m),
        lambda index: index,
        own_rows,
        lambda index: rp[index] == text_ids[:, None],
        itm_t2i,
        chunk_size,
        itm_batch_size,
    )
    return retrieval_metrics(i2t, t2i, itm_i2t is not None, k_i2t, k_t2i)
