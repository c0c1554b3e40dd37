"""Edge cases, errors, similarity refresh and statistics of the semi-hard batch sampler, the
neighbour lists it is built on, and `false_negative_mask` (method.md section 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from lavis_syncmask.models.momentum import ramped_alpha
from lavis_syncmask.sampling.batch_sampler import SemiHardBatchSampler
from lavis_syncmask.sampling.false_negatives import (
    false_negative_mask,
    itc_targets,
    itm_forbidden_pairs,
)
from lavis_syncmask.sampling.similarity import build_neighbours, pair_similarity


def small_corpus(seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """3 subcategories of 20 single-row products plus `lonely`: one product (3 rows) alone in
    its subcategory, which shares category `c0` with `a`."""
    rng = np.random.default_rng(seed)
    texts, products, subs, cats = [], [], [], []
    for s, cat in (("a", "c0"), ("b", "c1"), ("c", "c1")):
        for _ in range(20):
            words = [f"{s}{i}" for i in rng.choice(10, 5, replace=False)]
            texts.append(" ".join(words + [f"x{rng.integers(100)}"]))
            products.append(len(products))
            subs.append(s)
            cats.append(cat)
    for _ in range(3):
        texts.append("lonely unique product words")
        products.append(1000)
        subs.append("lonely")
        cats.append("c0")
    return texts, np.array(products), np.array(subs), np.array(cats)


# ---------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("mode", ["semi_hard", "grouped"])
def test_single_product_subcategory_falls_back(mode):
    texts, products, subs, cats = small_corpus()
    s = SemiHardBatchSampler(texts, products, subs, cats, 8, mode=mode, drop_last=False)
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        assert sorted(r for b in batches for r in b) == list(range(len(texts)))
        for batch in batches:
            assert len(set(products[batch].tolist())) == len(batch)
        lonely = [b for b in batches if any(subs[r] == "lonely" for r in b)]
        assert len(lonely) == 3  # its three rows are spread over three batches


def test_group_larger_than_its_subcategory():
    texts, products, subs, cats = small_corpus()
    # Groups of 8 while "lonely" has one product: members come from its category, then anywhere.
    s = SemiHardBatchSampler(texts, products, subs, cats, 16, group_size=8, drop_last=False)
    batches = list(s)
    assert sorted(r for b in batches for r in b) == list(range(len(texts)))
    for batch in batches:
        assert s.batch_statistics(batch)["false_negatives"] == 0


def test_identical_products_cannot_share_a_batch():
    # 10 products with two rows each, all with the same text: a batch can hold one row only,
    # so batches are completed with the 4 distinct other texts, reused if need be.
    texts = ["same words here"] * 20 + [f"other text {i} z{i}" for i in range(4)]
    products = np.array([i // 2 for i in range(20)] + [100, 101, 102, 103])
    subs = np.array(["s"] * 24)
    s = SemiHardBatchSampler(texts, products, subs, subs, 4, group_size=2)
    batches = list(s)
    assert len(batches) == 6
    for batch in batches:
        assert s.batch_statistics(batch)["false_negatives"] == 0
        assert sum(texts[r] == "same words here" for r in batch) == 1


def test_impossible_batches_warn():
    texts = ["same words here"] * 8
    s = SemiHardBatchSampler(texts, np.arange(8), ["s"] * 8, ["c"] * 8, 4, group_size=2)
    with pytest.warns(RuntimeWarning, match="false negatives"):
        batches = list(s)
    assert [len(b) for b in batches] == [4, 4]
    assert all(len(set(b)) == 4 for b in batches)


# ---------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors():
    texts, products, subs, cats = small_corpus()
    n = len(texts)
    with pytest.raises(ValueError, match=f"{n} items, fewer than one batch of 100"):
        SemiHardBatchSampler(texts, products, subs, cats, 100)
    with pytest.raises(ValueError, match="product_ids has 62 entries but texts has 63"):
        SemiHardBatchSampler(texts, products[:-1], subs, cats, 8)
    with pytest.raises(ValueError, match="categories"):
        SemiHardBatchSampler(texts, products, subs, cats[:10], 8)
    with pytest.raises(ValueError, match="mode must be one of"):
        SemiHardBatchSampler(texts, products, subs, cats, 8, mode="hard")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"batch_size \(10\) must be a multiple of group_size"):
        SemiHardBatchSampler(texts, products, subs, cats, 10, group_size=4)
    with pytest.raises(ValueError, match="rank must be in"):
        SemiHardBatchSampler(texts, products, subs, cats, 8, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="fewer than one per rank"):
        SemiHardBatchSampler(texts, products, subs, cats, 8, num_replicas=16, rank=0)
    with pytest.raises(ValueError, match="sim_lower"):
        SemiHardBatchSampler(texts, products, subs, cats, 8, sim_lower=0.95)
    with pytest.raises(ValueError, match="1-D"):
        SemiHardBatchSampler(texts, products[:, None], subs, cats, 8)
    with pytest.raises(ValueError, match="no words"):
        SemiHardBatchSampler([""] * 8, np.arange(8), ["s"] * 8, ["c"] * 8, 4)
    # Random mode has no groups, so any batch size is fine there.
    assert len(SemiHardBatchSampler(texts, products, subs, cats, 10, mode="random")) == n // 10


# ---------------------------------------------------------------------------- refresh
def test_refresh_similarity_replaces_tfidf():
    texts, products, subs, cats = small_corpus()
    s = SemiHardBatchSampler(texts, products, subs, cats, 8, refresh_every=2)
    before = list(s)
    rng = np.random.default_rng(0)
    embeddings = torch.from_numpy(rng.normal(size=(len(texts), 16)).astype(np.float32))
    s.refresh_similarity(embeddings)
    after = list(s)
    assert after != before
    # Statistics now use the embeddings' cosine similarity (rows of one text are averaged).
    batch = after[0]
    emb = embeddings.numpy()
    row = emb[batch[1]] / np.linalg.norm(emb[batch[1]])
    expected = float(emb[batch[0]] @ row / np.linalg.norm(emb[batch[0]]))
    sims = s.batch_statistics(batch[:2])
    assert sims["mean_negative_similarity"] == pytest.approx(expected, abs=1e-5)
    for b in after:
        assert s.batch_statistics(b)["false_negatives"] == 0
    with pytest.raises(ValueError, match="shape"):
        s.refresh_similarity(np.zeros((5, 16)))


def test_needs_refresh_schedule():
    texts, products, subs, cats = small_corpus()
    s = SemiHardBatchSampler(texts, products, subs, cats, 8, refresh_every=3)
    assert [e for e in range(10) if s.needs_refresh(e)] == [3, 6, 9]
    never = SemiHardBatchSampler(texts, products, subs, cats, 8, mode="grouped")
    assert not any(never.needs_refresh(e) for e in range(10))


# ---------------------------------------------------------------------------- random epochs
def test_random_epochs_precede_the_modes_own_batches():
    """`random_epochs=2`: epochs 0 and 1 are exactly the random-mode sampler's batches (no
    grouping), epoch 2 on the semi-hard sampler's own."""
    texts, products, subs, cats = small_corpus()
    args = (texts, products, subs, cats, 8)

    def epochs(sampler: SemiHardBatchSampler) -> list[list[list[int]]]:
        out = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out

    random = epochs(SemiHardBatchSampler(*args, mode="random", seed=5))
    semi_hard = epochs(SemiHardBatchSampler(*args, seed=5))
    curriculum = epochs(SemiHardBatchSampler(*args, seed=5, random_epochs=2))
    assert curriculum[:2] == random[:2] and curriculum[2] == semi_hard[2]
    assert all(r != h for r, h in zip(random, semi_hard, strict=True))
    with pytest.raises(ValueError, match="random_epochs >= 0"):
        SemiHardBatchSampler(*args, random_epochs=-1)


# ---------------------------------------------------------------------------- statistics
def test_batch_and_epoch_statistics():
    texts, products, subs, cats = small_corpus()
    s = SemiHardBatchSampler(texts, products, subs, cats, 8, mode="random")
    lonely = [60, 61, 62]  # three rows of one product and one text
    stats = s.batch_statistics(lonely)
    assert stats["false_negatives"] == 3 and math.isnan(stats["mean_negative_similarity"])
    assert stats["same_group_fraction"] == 1.0 and stats["num_pairs"] == 3
    mixed = s.batch_statistics([0, 20, 60])
    assert mixed["false_negatives"] == 0 and mixed["same_group_fraction"] == 0.0
    epoch = s.epoch_statistics()
    per_batch = [s.batch_statistics(b) for b in s]
    assert epoch["num_batches"] == len(per_batch) == len(s)
    assert epoch["false_negatives_per_batch"] == pytest.approx(
        np.mean([b["false_negatives"] for b in per_batch])
    )
    with pytest.raises(ValueError, match="batch indices"):
        s.batch_statistics([0, 63])


# ---------------------------------------------------------------------------- neighbours
@pytest.mark.parametrize("sparse", [True, False])
def test_neighbour_lists_match_brute_force(sparse):
    rng = np.random.default_rng(0)
    dense = np.abs(rng.normal(size=(300, 12))).astype(np.float32) ** 3
    dense[150] = dense[151] * 2  # a near-duplicate pair
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    features = sp.csr_matrix(dense) if sparse else dense
    groups = [np.arange(0, 260), np.arange(260, 300), np.array([5])]
    lower, upper, m = 0.3, 0.95, 7
    table = build_neighbours(features, groups, sim_lower=lower, sim_upper=upper, num_neighbours=m)
    cosine = dense @ dense.T
    for t in [0, 150, 151, 259, 260, 299]:
        group = groups[0] if t < 260 else groups[1]
        others = group[group != t]
        sims = cosine[t, others]
        band = others[(sims > lower) & (sims < upper)]
        expected = band[np.argsort(-cosine[t, band], kind="stable")][:m]
        got = table.band_idx[table.band_ptr[t] : table.band_ptr[t + 1]]
        np.testing.assert_allclose(cosine[t, got], cosine[t, expected], atol=1e-5)
        assert set(got) <= set(band.tolist())
        dups = table.dup_idx[table.dup_ptr[t] : table.dup_ptr[t + 1]]
        assert sorted(dups.tolist()) == sorted(others[sims >= upper].tolist())
    assert 151 in table.dup_idx[table.dup_ptr[150] : table.dup_ptr[151]].tolist()
    np.testing.assert_allclose(
        pair_similarity(features, [1, 2], [3]), cosine[[1, 2]][:, [3]], atol=1e-5
    )


# ---------------------------------------------------------------------------- false negatives
def test_false_negative_mask():
    mask = false_negative_mask(torch.tensor([1, 2, 3]), torch.tensor([3, 1, 9, 1]))
    expected = torch.tensor(
        [[False, True, False, True], [False, False, False, False], [True, False, False, False]]
    )
    assert mask.dtype == torch.bool and torch.equal(mask, expected)
    with_text = false_negative_mask(
        torch.tensor([1, 2]), torch.tensor([5, 6]), torch.tensor([7, 8]), torch.tensor([8, 0])
    )
    assert torch.equal(with_text, torch.tensor([[False, False], [True, False]]))
    square = false_negative_mask(torch.arange(4), torch.arange(4))
    assert torch.equal(square, torch.eye(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="together"):
        false_negative_mask(torch.arange(2), torch.arange(2), torch.arange(2))
    with pytest.raises(ValueError, match="1-D"):
        false_negative_mask(torch.zeros(2, 2, dtype=torch.long), torch.arange(2))
    with pytest.raises(ValueError, match="text_ids_b has shape"):
        false_negative_mask(torch.arange(2), torch.arange(3), torch.arange(2), torch.arange(2))


def test_itc_targets_and_itm_forbidden_pairs():
    products, texts = torch.tensor([1, 1, 2]), torch.tensor([10, 11, 12])
    queue_products, queue_texts = torch.tensor([2, 5]), torch.tensor([99, 11])
    targets = itc_targets(products, texts, queue_products, queue_texts)
    # rows 0 and 1 share a product; queue entry 1 carries row 1's text, queue entry 0 row 2's
    # product
    assert targets.tolist() == [
        [True, True, False, False, False],
        [True, True, False, False, True],
        [False, False, True, True, False],
    ]
    lavis_like = itc_targets(products, texts, queue_products, queue_texts, False)
    assert torch.equal(lavis_like, torch.eye(3, 5, dtype=torch.bool))
    near = torch.tensor([[1.0, 0.2, 0.95], [0.2, 1.0, 0.1], [0.95, 0.1, 1.0]])
    forbidden = itm_forbidden_pairs(products, texts, near, near_duplicate_sim=0.9)
    assert forbidden.tolist() == [[True, True, True], [True, True, False], [True, False, True]]
    assert itm_forbidden_pairs(products, texts).sum() == 5  # without similarity: ids only
    assert torch.equal(
        itm_forbidden_pairs(products, texts, near, 0.9, False), torch.eye(3, dtype=torch.bool)
    )


def test_ramped_alpha_follows_lavis_ramp():
    batch = {"epoch": 0, "iters": 5, "num_iters_per_epoch": 10}
    assert ramped_alpha(0.4, 2, batch) == pytest.approx(0.1)  # 5 of 20 ramp updates
    assert ramped_alpha(0.4, 2, {**batch, "epoch": 3}) == pytest.approx(0.4)  # ramp over
    assert ramped_alpha(0.4, 0, batch) == 0.4  # no ramp
    assert ramped_alpha(0.4, 2, {"epoch": 1}) == 0.4  # no epoch length: outside LAVIS's loop


def test_near_duplicates_across_subcategories_are_kept_apart():
    """Neighbour lists only cover a subcategory; the exact check must catch the rest."""
    rng = np.random.default_rng(0)
    texts, subs = [], []
    for _ in range(30):
        base = " ".join(f"w{j}" for j in rng.choice(40, 8, replace=False))
        texts += [base, base + " extra"]  # a near-duplicate pair split over two subcategories
        subs += ["a", "b"]
    products, cats = np.arange(60), np.array(["c"] * 60)
    s = SemiHardBatchSampler(
        texts, products, subs, cats, 12, sim_upper=0.8, anchor_scope="any", drop_last=False
    )
    vectors = TfidfVectorizer().fit_transform(texts)
    pairs = np.asarray(vectors[0::2].multiply(vectors[1::2]).sum(axis=1)).ravel()
    assert (pairs >= 0.8).all()
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        assert sorted(r for b in batches for r in b) == list(range(60))
        for batch in batches:
            assert s.batch_statistics(batch)["false_negatives"] == 0


def test_replicas_default_to_torch_distributed(monkeypatch):
    texts, products, subs, cats = small_corpus()
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 2)
    s = SemiHardBatchSampler(texts, products, subs, cats, 4)
    assert (s.num_replicas, s.rank) == (3, 2)
    assert list(s) == s.global_batches()[2 : 3 * len(s) : 3]


def test_degenerate_catalogues_are_refused_with_a_message():
    """Every row with one product id used to train on (496 false negatives per batch, NaN
    similarity statistics); too few products or a single subcategory are refused too."""
    texts, products, subs, cats = small_corpus()
    one = np.full(len(texts), 7)
    for mode in ("semi_hard", "grouped", "random"):
        with pytest.raises(ValueError, match="single product for all 63 items"):
            SemiHardBatchSampler(texts, one, subs, cats, 8, mode=mode)
    few = np.arange(len(texts)) % 3
    with pytest.raises(ValueError, match="has 3 products for batches of 8"):
        SemiHardBatchSampler(texts, few, subs, cats, 8, mode="semi_hard")
    with pytest.raises(ValueError, match="single subcategory"):
        SemiHardBatchSampler(texts, products, ["s"] * len(texts), cats, 8, mode="grouped")
    # Random batches over few products stay allowed, and their statistics hold no NaN.
    s = SemiHardBatchSampler(
        texts[:8], [0, 0, 0, 0, 0, 0, 0, 1], subs[:8], cats[:8], 4, mode="random"
    )
    stats = s.epoch_statistics()
    assert all(not math.isnan(v) for v in stats.values()), stats
