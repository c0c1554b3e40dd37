"""The FashionGen "sample-100" retrieval protocol (benchmarks-and-data.md, "FashionGen retrieval
protocols"), the one most fashion VLP papers report.

1,000 random query products; each is ranked against 101 candidate products: itself plus 100
negatives from other products of the same subcategory (topped up from other subcategories when
the subcategory is too small). Image-to-text ranks the 101 product texts for one view of the
query; text-to-image ranks one view of each of the 101 products for the query text. Scores come
from an ITM callback; the metrics are R@1/5/10 both ways and their mean, averaged over repeats
with different seeds (as FashionViL / FAME-ViL do).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lavis_syncmask.evaluation.recall import (
    RETRIEVAL_KS,
    batched_pair_scores,
    bidirectional_recalls,
    rank_of_first_hit,
)

SampleScorer = Callable[[Tensor, Tensor], Tensor]
KS = RETRIEVAL_KS


@dataclass(frozen=True)
class Sample100Set:
    """Candidate sets of one sample-100 draw. Column 0 of every candidate array is the positive
    (order does not matter for the metric because ties are broken pessimistically)."""

    query_products: np.ndarray  # (Q,) product id of each query
    query_rows: np.ndarray  # (Q,) image row used as the query view (image-to-text)
    candidate_products: np.ndarray  # (Q, 1 + n_negatives) product ids; column 0 = the query
    candidate_rows: np.ndarray  # (Q, 1 + n_negatives) one view per candidate; column 0 = query_rows
    n_same_subcategory: np.ndarray  # (Q,) how many negatives share the query's subcategory
    seed: int


@dataclass(frozen=True)
class _Catalogue:
    products: np.ndarray  # (P,) sorted distinct product ids
    row_order: np.ndarray  # (rows,) row indices grouped by product
    starts: np.ndarray  # (P,) first position of each product in row_order
    counts: np.ndarray  # (P,) number of views of each product
    subcategory: np.ndarray  # (P,) subcategory index of each product


def _catalogue(product_ids: np.ndarray, product_subcategory: Mapping[int, str]) -> _Catalogue:
    product_ids = np.asarray(product_ids)
    if product_ids.ndim != 1 or product_ids.size == 0:
        raise ValueError(f"product_ids must be a non-empty (rows,) array, got {product_ids.shape}")
    products, inverse, counts = np.unique(product_ids, return_inverse=True, return_counts=True)
    missing = [int(p) for p in products if int(p) not in product_subcategory]
    if missing:
        raise ValueError(
            f"{len(missing)} product(s) have no subcategory in product_subcategory, "
            f"e.g. {missing[:5]}"
        )
    names = [product_subcategory[int(p)] for p in products]
    _, subcategory = np.unique(np.asarray(names, dtype=object).astype(str), return_inverse=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.argsort(inverse, kind="stable")
    return _Catalogue(products, order, starts, counts, subcategory)


def _draw_views(cat: _Catalogue, product_index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly drawn image row per entry of `product_index` (any shape)."""
    offset = rng.integers(0, cat.counts[product_index])
    return cat.row_order[cat.starts[product_index] + offset]


def _draw_negatives(
    cat: _Catalogue, query: int, n_negatives: int, rng: np.random.Generator, others_cache: dict
) -> tuple[np.ndarray, int]:
    """`n_negatives` distinct product indices != `query`, same subcategory first; and how many
    of them share its subcategory."""
    sub = cat.subcategory[query]
    same = np.flatnonzero(cat.subcategory == sub)
    same = same[same != query]
    if same.size >= n_negatives:
        return rng.choice(same, size=n_negatives, replace=False), n_negatives
    if sub not in others_cache:
        others_cache[sub] = np.flatnonzero(cat.subcategory != sub)
    top_up = rng.choice(others_cache[sub], size=n_negatives - same.size, replace=False)
    return np.concatenate([rng.permutation(same), top_up]), int(same.size)


def build_sample100(
    product_ids: np.ndarray,
    product_subcategory: Mapping[int, str],
    *,
    n_queries: int = 1000,
    n_negatives: int = 100,
    seed: int,
) -> Sample100Set:
    """Draw the sample-100 candidate sets.

    Args:
        product_ids: `(rows,)` product id of each validation image row.
        product_subcategory: product id -> subcategory name, for every product in `product_ids`.
        n_queries: query products (all of them, with a warning, if fewer exist).
        n_negatives: negatives per query; the set must hold at least `n_negatives + 1` products.
        seed: seeds a `numpy.random.Generator`; the same seed gives the same sets.

    Returns:
        A `Sample100Set` with `(Q,)` queries and `(Q, 1 + n_negatives)` candidates.

    Example:
        >>> ids = np.repeat(np.arange(300), 2)  # 300 products, 2 views each
        >>> subcats = {p: "coats" if p < 150 else "hats" for p in range(300)}
        >>> build_sample100(ids, subcats, n_queries=10, seed=0).candidate_products.shape
        (10, 101)
    """
    if n_queries < 1 or n_negatives < 1:
        raise ValueError(f"n_queries and n_negatives must be >= 1, got {n_queries}, {n_negatives}")
    cat = _catalogue(product_ids, product_subcategory)
    n_products = cat.products.size
    if n_products < n_negatives + 1:
        raise ValueError(
            f"sample-100 needs at least {n_negatives + 1} distinct products "
            f"(1 positive + {n_negatives} negatives), the set has {n_products}"
        )
    if n_queries > n_products:
        warnings.warn(
            f"only {n_products} products; using all of them as queries instead of {n_queries}",
            stacklevel=2,
        )
        n_queries = n_products
    rng = np.random.default_rng(seed)
    queries = rng.choice(n_products, size=n_queries, replace=False)
    candidates = np.empty((n_queries, n_negatives + 1), dtype=np.int64)
    n_same = np.empty(n_queries, dtype=np.int64)
    others_cache: dict = {}
    for i, query in enumerate(queries):
        negatives, n_same[i] = _draw_negatives(cat, int(query), n_negatives, rng, others_cache)
        candidates[i, 0], candidates[i, 1:] = query, negatives
    rows = _draw_views(cat, candidates, rng)
    return Sample100Set(
        query_products=cat.products[queries],
        query_rows=rows[:, 0].copy(),
        candidate_products=cat.products[candidates],
        candidate_rows=rows,
        n_same_subcategory=n_same,
        seed=int(seed),
    )


def evaluate_sample100(
    sample: Sample100Set, score_pairs: SampleScorer, batch_size: int = 1024
) -> dict:
    """R@1/5/10 in percent for both directions of one sample-100 draw.

    Args:
        sample: candidate sets from `build_sample100`.
        score_pairs: `(image rows (n,), product ids (n,)) -> (n,)` ITM scores of image row vs
            product text (higher = better match); called in batches of `batch_size` pairs.

    Returns:
        `i2t_r1, i2t_r5, i2t_r10, i2t_r_mean, t2i_r1, ..., t2i_r_mean, r_mean` (mean of the six
        recalls), plus `n_queries`, `n_candidates` and `seed`.
    """
    q, c = sample.candidate_products.shape
    hits = torch.zeros(q, c, dtype=torch.bool)
    hits[:, 0] = True
    products = torch.as_tensor(sample.candidate_products, dtype=torch.long)
    query_rows = torch.as_tensor(sample.query_rows, dtype=torch.long)
    candidate_rows = torch.as_tensor(sample.candidate_rows, dtype=torch.long)
    query_products = torch.as_tensor(sample.query_products, dtype=torch.long)
    i2t = batched_pair_scores(
        score_pairs, query_rows.repeat_interleave(c), products.flatten(), batch_size
    ).view(q, c)
    t2i = batched_pair_scores(
        score_pairs, candidate_rows.flatten(), query_products.repeat_interleave(c), batch_size
    ).view(q, c)
    metrics: dict = bidirectional_recalls(
        rank_of_first_hit(i2t, hits), rank_of_first_hit(t2i, hits), KS
    )
    metrics.update(n_queries=q, n_candidates=c, seed=sample.seed)
    return metrics


def sample100_repeats(
    product_ids: np.ndarray,
    product_subcategory: Mapping[int, str],
    score_pairs: SampleScorer,
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    *,
    n_queries: int = 1000,
    n_negatives: int = 100,
    batch_size: int = 1024,
) -> dict:
    """Sample-100 repeated once per seed (FashionViL / FAME-ViL average 5 repeats).

    Returns a flat dict: each recall key of `evaluate_sample100` (`i2t_r1`, ..., `r_mean`)
    holds the mean over seeds and `<key>_std` its POPULATION standard deviation (ddof=0, so one
    seed gives 0.0), plus `std_ddof`, `seeds`, `n_queries`, `n_candidates` and `per_seed` (the
    list of per-seed metric dicts, each with its `seed`).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    per_seed = []
    for seed in seeds:
        sample = build_sample100(
            product_ids,
            product_subcategory,
            n_queries=n_queries,
            n_negatives=n_negatives,
            seed=seed,
        )
        per_seed.append(evaluate_sample100(sample, score_pairs, batch_size))
    recall_keys = [f"{d}_r{k}" for d in ("i2t", "t2i") for k in KS]
    out: dict = {}
    for key in [*recall_keys, "i2t_r_mean", "t2i_r_mean", "r_mean"]:
        values = np.array([m[key] for m in per_seed], dtype=np.float64)
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=0))
    out.update(
        std_ddof=0,
        seeds=seeds,
        n_queries=per_seed[0]["n_queries"],
        n_candidates=per_seed[0]["n_candidates"],
        per_seed=per_seed,
    )
    return out
