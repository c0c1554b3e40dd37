"""Ranks with pessimistic ties, Recall@K and batched pair scoring (evaluation/recall.py)."""

from __future__ import annotations

import pytest
import torch

from lavis_syncmask.evaluation import (
    batched_pair_scores,
    bidirectional_recalls,
    rank_of_first_hit,
    recall_at_k,
)


def test_rank_of_first_hit_known_ranks() -> None:
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.5, 0.3],  # hit col 0, best -> rank 0
            [0.9, 0.1, 0.5, 0.3],  # hit col 3 -> 0.9, 0.5 above -> rank 2
            [0.9, 0.1, 0.5, 0.3],  # hits cols 1 and 2 -> best hit 0.5 -> rank 1
            [0.2, 0.8, 0.4, 0.6],  # hit col 0 (lowest) -> rank 3
        ]
    )
    hits = torch.tensor(
        [
            [True, False, False, False],
            [False, False, False, True],
            [False, True, True, False],
            [True, False, False, False],
        ]
    )
    assert rank_of_first_hit(scores, hits).tolist() == [0, 2, 1, 3]


def test_ties_are_pessimistic_and_rows_without_hit_rank_c() -> None:
    scores = torch.tensor(
        [
            [0.5, 0.5, 0.5, 0.1],  # hit tied with two non-hits -> ranked after both
            [0.5, 0.5, 0.2, 0.1],  # two hits tied with each other only -> rank 0
            [0.3, 0.3, 0.3, 0.3],  # constant scorer: last
            [0.9, 0.8, 0.7, 0.6],  # no hit at all -> rank C = 4
        ]
    )
    hits = torch.tensor(
        [
            [False, True, False, False],
            [True, True, False, False],
            [False, False, True, False],
            [False, False, False, False],
        ]
    )
    assert rank_of_first_hit(scores, hits).tolist() == [2, 0, 3, 4]


def test_rank_of_first_hit_rejects_bad_input() -> None:
    scores = torch.rand(2, 3)
    with pytest.raises(ValueError, match="shape"):
        rank_of_first_hit(scores, torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        rank_of_first_hit(scores, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        rank_of_first_hit(torch.tensor([[float("nan"), 1.0]]), torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match=r"\(Q, C\)"):
        rank_of_first_hit(torch.rand(3), torch.zeros(3, dtype=torch.bool))


def test_recall_at_k_exact_values() -> None:
    ranks = torch.tensor([0, 0, 1, 4, 5, 9, 10, 99])
    assert recall_at_k(ranks) == {"r1": 25.0, "r5": 50.0, "r10": 75.0}
    assert recall_at_k(ranks, ks=(2, 100)) == {"r2": 37.5, "r100": 100.0}
    with pytest.raises(ValueError, match="non-empty"):
        recall_at_k(torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        recall_at_k(ranks, ks=(0,))


def test_bidirectional_recalls_means() -> None:
    out = bidirectional_recalls(torch.tensor([0, 7]), torch.tensor([3, 20]), ks=(1, 5, 10))
    assert out["i2t_r1"] == 50.0 and out["i2t_r5"] == 50.0 and out["i2t_r10"] == 100.0
    assert out["t2i_r1"] == 0.0 and out["t2i_r5"] == 50.0 and out["t2i_r10"] == 50.0
    assert out["i2t_r_mean"] == pytest.approx(200 / 3)
    assert out["t2i_r_mean"] == pytest.approx(100 / 3)
    assert out["r_mean"] == pytest.approx(50.0)


def test_batched_pair_scores_matches_one_call_and_checks_output() -> None:
    a, b = torch.arange(10), torch.arange(10, 20)
    calls = []

    def scorer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(x.numel())
        return (x * 100 + y).float()

    out = batched_pair_scores(scorer, a, b, batch_size=4)
    assert calls == [4, 4, 2]
    assert out.dtype == torch.float64
    assert out.tolist() == [float(i * 100 + 10 + i) for i in range(10)]
    with pytest.raises(ValueError, match=r"\(4,\) tensor"):
        batched_pair_scores(lambda x, y: torch.zeros(1), a, b, batch_size=4)
    with pytest.raises(ValueError, match="pair indices"):
        batched_pair_scores(scorer, a, b[:3])
