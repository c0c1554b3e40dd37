"""Sample-100 candidate sets obey the protocol's rules, and its metrics are exact on scorers
whose ranks are known (evaluation/sample100.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lavis_syncmask.evaluation import (
    Sample100Set,
    build_sample100,
    evaluate_sample100,
    sample100_repeats,
)

# 150 + 120 products in two large subcategories, 30 in a small one that needs a top-up.
SUBCAT_SIZES = {"jackets": 150, "dresses": 120, "scarves": 30}


def catalogue(seed: int = 0) -> tuple[np.ndarray, dict[int, str]]:
    """(rows,) product ids with 1-3 views each, rows shuffled so views are not consecutive."""
    rng = np.random.default_rng(seed)
    subcategory, pid = {}, 1000
    for name, size in SUBCAT_SIZES.items():
        for _ in range(size):
            subcategory[pid] = name
            pid += 7  # sparse, non-contiguous ids
    ids = np.concatenate([[p] * int(rng.integers(1, 4)) for p in subcategory])
    return rng.permutation(ids), subcategory


def test_candidate_sets_follow_the_rules() -> None:
    ids, subcat = catalogue()
    s = build_sample100(ids, subcat, n_queries=120, seed=3)
    assert s.candidate_products.shape == (120, 101) and s.candidate_rows.shape == (120, 101)
    assert len(set(s.query_products.tolist())) == 120
    assert (s.candidate_products[:, 0] == s.query_products).all()
    assert (s.candidate_rows[:, 0] == s.query_rows).all()
    # every view drawn belongs to the product it stands for
    assert (ids[s.candidate_rows] == s.candidate_products).all()
    for q, row in zip(s.query_products, s.candidate_products):
        assert len(set(row.tolist())) == 101
        same = sum(subcat[int(p)] == subcat[int(q)] for p in row[1:])
        if SUBCAT_SIZES[subcat[int(q)]] - 1 >= 100:
            assert same == 100
        else:  # all 29 other scarves, then a top-up from other subcategories
            others = {p for p, c in subcat.items() if c == subcat[int(q)] and p != q}
            assert others <= set(row[1:].tolist()) and same == 29
    expected_same = [min(SUBCAT_SIZES[subcat[int(q)]] - 1, 100) for q in s.query_products]
    assert s.n_same_subcategory.tolist() == expected_same


def test_views_vary_and_draws_are_seeded() -> None:
    ids, subcat = catalogue()
    a = build_sample100(ids, subcat, n_queries=50, seed=7)
    b = build_sample100(ids, subcat, n_queries=50, seed=7)
    c = build_sample100(ids, subcat, n_queries=50, seed=8)
    for field in ("query_products", "query_rows", "candidate_products", "candidate_rows"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.query_products, c.query_products)
    assert not np.array_equal(a.candidate_products[:, 1:], c.candidate_products[:, 1:])
    # several views of multi-view products get used across queries (not always the first)
    multi = {int(p) for p, n in zip(*np.unique(ids, return_counts=True)) if n > 1}
    rows = a.candidate_rows[np.isin(a.candidate_products, list(multi))]
    first_row = {int(p): int(np.flatnonzero(ids == p)[0]) for p in multi}
    assert any(int(r) != first_row[int(ids[r])] for r in rows)


def test_small_sets_warn_or_fail_clearly() -> None:
    ids, subcat = catalogue()
    with pytest.warns(UserWarning, match="only 300 products"):
        s = build_sample100(ids, subcat, n_queries=1000, seed=0)
    assert sorted(s.query_products.tolist()) == sorted(subcat)
    few = ids[np.isin(ids, list(subcat)[:100])]
    with pytest.raises(ValueError, match="at least 101 distinct products"):
        build_sample100(few, subcat, seed=0)
    with pytest.raises(ValueError, match="no subcategory"):
        build_sample100(np.append(ids, 5), subcat, seed=0)


def hand_made_set(n_queries: int = 20) -> Sample100Set:
    """Query q ranks products q*101 .. q*101+100 (column 0 = itself); row r shows product r."""
    products = np.arange(n_queries * 101).reshape(n_queries, 101)
    return Sample100Set(
        query_products=products[:, 0].copy(),
        query_rows=products[:, 0].copy(),
        candidate_products=products,
        candidate_rows=products.copy(),
        n_same_subcategory=np.full(n_queries, 100),
        seed=0,
    )


def test_evaluate_sample100_exact_recalls_both_directions() -> None:
    n = 20
    i2t_rank = np.arange(n) % 13
    t2i_rank = (3 * np.arange(n)) % 17

    def scorer(rows: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
        out = []
        for r, p in zip(rows.tolist(), products.tolist()):
            if r == p:  # the positive pair, shared by both directions
                out.append(-0.5)
                continue
            if r % 101 == 0:  # image-to-text: the row is the query's view
                q, j, rank = r // 101, p % 101, i2t_rank
            else:  # text-to-image: the product is the query's text
                q, j, rank = p // 101, r % 101, t2i_rank
            # the first rank[q] negatives beat the positive, the rest lose to it
            out.append(1.0 if j <= rank[q] else -1.0)
        return torch.tensor(out)

    m = evaluate_sample100(hand_made_set(n), scorer, batch_size=37)
    for name, rank in (("i2t", i2t_rank), ("t2i", t2i_rank)):
        for k in (1, 5, 10):
            assert m[f"{name}_r{k}"] == pytest.approx(100.0 * np.mean(rank < k))
        assert m[f"{name}_r_mean"] == pytest.approx(
            np.mean([np.mean(rank < k) for k in (1, 5, 10)]) * 100
        )
    assert m["r_mean"] == pytest.approx((m["i2t_r_mean"] + m["t2i_r_mean"]) / 2)
    assert (m["n_queries"], m["n_candidates"]) == (n, 101)


def test_oracle_and_constant_scorers() -> None:
    ids, subcat = catalogue()
    s = build_sample100(ids, subcat, n_queries=40, seed=1)
    ids_t = torch.as_tensor(ids)
    oracle = evaluate_sample100(s, lambda r, p: (ids_t[r] == p).float())
    assert all(oracle[k] == 100.0 for k in ("i2t_r1", "t2i_r1", "r_mean"))
    constant = evaluate_sample100(s, lambda r, p: torch.ones(r.shape))
    assert all(constant[k] == 0.0 for k in ("i2t_r10", "t2i_r10", "r_mean"))


def test_repeats_aggregate_per_seed_results() -> None:
    ids, subcat = catalogue()

    def noisy(rows: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
        match = (torch.as_tensor(ids)[rows] == products).float()
        return match + ((rows * 7919 + products * 104729) % 1000).float() / 400

    out = sample100_repeats(ids, subcat, noisy, seeds=(4, 9, 2), n_queries=60)
    assert out["seeds"] == [4, 9, 2] and [m["seed"] for m in out["per_seed"]] == [4, 9, 2]
    direct = evaluate_sample100(build_sample100(ids, subcat, n_queries=60, seed=9), noisy)
    assert out["per_seed"][1] == direct
    for key in ("i2t_r1", "t2i_r5", "r_mean"):
        values = np.array([m[key] for m in out["per_seed"]])
        assert out[key] == pytest.approx(values.mean())
        assert out[f"{key}_std"] == pytest.approx(values.std(ddof=0))
    assert out["std_ddof"] == 0
    assert len({m["i2t_r1"] for m in out["per_seed"]}) > 1  # seeds really differ
