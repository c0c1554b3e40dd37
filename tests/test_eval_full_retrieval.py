"""Streaming top-k, ITM re-ranking and the full FashionGen protocol on hand-made similarity
matrices (evaluation/full_retrieval.py).

With text features = identity, image feature row i IS row i of the ITC score matrix, so every
test states its scores directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lavis_syncmask.evaluation import full_retrieval, rerank_topk, streaming_topk


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16, 1000])
@pytest.mark.parametrize("k", [1, 5, 23])
def test_streaming_topk_equals_dense_topk(chunk_size: int, k: int) -> None:
    g = torch.Generator().manual_seed(chunk_size * 100 + k)
    queries = torch.randn(37, 6, generator=g, dtype=torch.float64)
    gallery = torch.randn(23, 6, generator=g, dtype=torch.float64)
    scores, index = streaming_topk(queries, gallery, k, chunk_size=chunk_size)
    dense_scores, dense_index = (queries @ gallery.T).topk(k, dim=1)
    assert torch.equal(index, dense_index)
    torch.testing.assert_close(scores, dense_scores)


def test_streaming_topk_rejects_bad_input() -> None:
    q, g = torch.randn(4, 3), torch.randn(5, 3)
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\]"):
        streaming_topk(q, g, 6)
    with pytest.raises(ValueError, match="widths differ"):
        streaming_topk(q, torch.randn(5, 2), 2)
    with pytest.raises(ValueError, match="chunk_size"):
        streaming_topk(q, g, 2, chunk_size=0)


def test_rerank_topk_orders_by_pair_score_stably() -> None:
    topk = torch.tensor([[4, 2, 7], [1, 0, 3]])

    def itm(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        table = {(0, 4): 0.1, (0, 2): 0.9, (0, 7): 0.5, (1, 1): 0.3, (1, 0): 0.3, (1, 3): 0.8}
        return torch.tensor(
            [table[(a, b)] for a, b in zip(q.tolist(), g.tolist())], dtype=torch.float64
        )

    scores, index = rerank_topk(topk, itm, batch_size=4)
    assert index.tolist() == [[2, 7, 4], [3, 1, 0]]  # 1 before 0: ties keep short-list order
    assert scores.tolist() == [[0.9, 0.5, 0.1], [0.8, 0.3, 0.3]]
    assert topk.tolist() == [[4, 2, 7], [1, 0, 3]]  # input untouched


def test_any_view_counts_for_text_to_image() -> None:
    # rows 0, 1 show product 0; rows 2, 3 product 1; row 4 product 2
    scores = torch.tensor(
        [
            [0.1, 0.9, 0.0],  # own text 2nd -> rank 1
            [0.8, 0.2, 0.1],  # rank 0
            [0.3, 0.5, 0.4],  # rank 0
            [0.6, 0.1, 0.7],  # rank 2
            [0.2, 0.3, 0.35],  # rank 0
        ]
    )
    row_product = np.array([0, 0, 1, 1, 2])
    m = full_retrieval(scores, torch.eye(3), row_product, k_test=10)
    assert (m["i2t_r1"], m["i2t_r5"]) == (pytest.approx(60.0), 100.0)
    # text 0: its view row 1 is first (row 0 alone would rank 3rd); text 1: row 0 beats its
    # best view; text 2: rows 3 and 2 beat its only view
    assert m["t2i_r1"] == pytest.approx(100 / 3)
    assert m["t2i_r5"] == 100.0
    assert m["scoring"] == "itc" and (m["k_i2t"], m["k_t2i"]) == (3, 5)


def ranks_by_sorting(scores: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """Reference: position of the first hit in each row sorted by descending score."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.argmax(np.take_along_axis(hits, order, axis=1), axis=1)


def staircase(n: int) -> np.ndarray:
    """(n, n) distinct scores where row i's own column i is beaten by exactly i others."""
    rng = np.random.default_rng(0)
    s = np.empty((n, n))
    for i in range(n):
        others = rng.permutation([j for j in range(n) if j != i])
        s[i, others[:i]] = 2.0 + rng.random(i)
        s[i, others[i:]] = -1.0 - rng.random(n - 1 - i)
        s[i, i] = 0.5
    return s


def test_itc_only_matches_dense_ranks_and_short_list_misses() -> None:
    n = 30
    s = staircase(n)
    rp = np.arange(n)
    eye = np.eye(n, dtype=bool)
    t2i_ref = ranks_by_sorting(s.T, eye)
    for k_test in (10, 30):
        m = full_retrieval(torch.tensor(s), torch.eye(n, dtype=torch.float64), rp, k_test=k_test)
        for k in (1, 5, 10):
            assert m[f"i2t_r{k}"] == pytest.approx(100.0 * k / n)  # row i has rank i
            assert m[f"t2i_r{k}"] == pytest.approx(100.0 * np.mean(t2i_ref < k))


def test_itm_rerank_cannot_rescue_hits_outside_the_short_list() -> None:
    n, k_test = 30, 12
    s = staircase(n)
    rp = np.arange(n)

    def oracle(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (q == g).double()

    m = full_retrieval(
        torch.tensor(s),
        torch.eye(n, dtype=torch.float64),
        rp,
        k_test=k_test,
        itm_i2t=oracle,
        itm_t2i=oracle,
    )
    assert m["scoring"] == "itc+itm"
    # rows 0..11 have their text in the ITC top-12, ITM then puts it first; rows 12.. miss
    assert m["i2t_r1"] == pytest.approx(100.0 * k_test / n)
    in_list = ranks_by_sorting(s.T, np.eye(n, dtype=bool)) < k_test
    assert m["t2i_r1"] == pytest.approx(100.0 * in_list.mean())


def test_full_retrieval_rejects_bad_input() -> None:
    img, txt = torch.randn(6, 4), torch.randn(3, 4)
    rp = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="both itm_i2t and itm_t2i"):
        full_retrieval(img, txt, rp, k_test=10, itm_i2t=lambda q, g: q.float())
    with pytest.raises(ValueError, match="k_test must be >= 10"):
        full_retrieval(img, txt, rp, k_test=5)
    with pytest.raises(ValueError, match=r"text\(s\) have no image row"):
        full_retrieval(img, txt, np.array([0, 0, 1, 1, 1, 1]), k_test=10)
    with pytest.raises(ValueError, match="must index the 3 texts"):
        full_retrieval(img, txt, np.array([0, 0, 1, 1, 2, 3]), k_test=10)
    with pytest.raises(ValueError, match="integer"):
        full_retrieval(img, txt, rp[:5], k_test=10)
