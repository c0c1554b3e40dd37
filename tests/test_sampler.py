"""Invariants of the semi-hard batch sampler (lavis_syncmask.sampling.batch_sampler, method.md section 4)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from torch.utils.data import DataLoader, TensorDataset

from lavis_syncmask.sampling.batch_sampler import SemiHardBatchSampler

Corpus = tuple[list[str], np.ndarray, np.ndarray, np.ndarray]


def make_corpus(n_sub: int = 4, per_sub: int = 40, seed: int = 0) -> Corpus:
    """Products of `n_sub` subcategories (2 per category) with 1-3 rows each; every 10th
    product repeats the previous text (a near-duplicate product) and texts of a subcategory
    share its words, so TF-IDF similarity has structure."""
    rng = np.random.default_rng(seed)
    vocab = [f"v{i}" for i in range(200)]
    texts, products, subs, cats = [], [], [], []
    for s in range(n_sub):
        sub_words = [f"s{s}w{i}" for i in range(12)]
        for p in range(per_sub):
            if p % 10 == 9:
                text = texts[-1]
            else:
                words = [*rng.choice(sub_words, 6, replace=False), *rng.choice(vocab, 6)]
                text = " ".join(words)
            for _ in range(int(rng.integers(1, 4))):
                texts.append(text)
                products.append(s * per_sub + p)
                subs.append(f"sub{s}")
                cats.append(f"cat{s // 2}")
    return texts, np.array(products), np.array(subs), np.array(cats)


def tfidf_cosine(texts: list[str]) -> np.ndarray:
    """Independent reference: dense (N, N) cosine of TF-IDF vectors of every row."""
    unique = sorted(set(texts))
    vectors = TfidfVectorizer().fit_transform(unique).toarray()
    index = {t: i for i, t in enumerate(unique)}
    rows = vectors[[index[t] for t in texts]]
    return rows @ rows.T


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return make_corpus()


@pytest.fixture(scope="module")
def cosine(corpus: Corpus) -> np.ndarray:
    return tfidf_cosine(corpus[0])


def sampler(corpus: Corpus, batch_size: int = 16, **kwargs) -> SemiHardBatchSampler:
    return SemiHardBatchSampler(*corpus, batch_size, **kwargs)


def all_batches(s: SemiHardBatchSampler, ranks: int, epoch: int = 0) -> list[list[list[int]]]:
    """Batches of every rank for one epoch, from samplers that differ only in `rank`."""
    out = []
    for rank in range(ranks):
        s.rank, s.num_replicas = rank, ranks
        s.set_epoch(epoch)
        out.append(list(s))
    return out


# ---------------------------------------------------------------------------- semi_hard
@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_semi_hard_batches_have_no_false_negatives(corpus, cosine, epoch):
    texts, products, _, _ = corpus
    s = sampler(corpus, mode="semi_hard", sim_upper=0.9)
    s.set_epoch(epoch)
    batches = list(s)
    assert len(batches) == len(s) == len(texts) // 16
    for batch in batches:
        assert len(batch) == 16 and len(set(batch)) == 16
        assert len(set(products[batch].tolist())) == 16, "two rows of one product"
        assert len({texts[i] for i in batch}) == 16, "two rows with the same text"
        sims = cosine[np.ix_(batch, batch)]
        assert (sims[np.triu_indices(16, 1)] < 0.9).all(), "near-duplicate pair in a batch"
        assert s.batch_statistics(batch)["false_negatives"] == 0


def test_semi_hard_groups_share_the_anchor_subcategory(corpus):
    subs = corpus[2]
    s = sampler(corpus, mode="semi_hard", group_size=4)
    batches = list(s)
    groups = [b[i : i + 4] for b in batches for i in range(0, 16, 4)]
    homogeneous = [len(set(subs[g].tolist())) == 1 for g in groups]
    # Early in the epoch every subcategory still has plenty of unused rows.
    assert all(homogeneous[: len(groups) // 2])
    assert np.mean(homogeneous) >= 0.9


def test_semi_hard_first_group_takes_the_most_similar_band_neighbours(corpus, cosine):
    """The epoch's first group, built from an empty batch, matches a brute-force greedy pick."""
    texts, products, subs, _ = corpus
    lower, upper = 0.2, 0.9
    s = sampler(corpus, mode="semi_hard", sim_lower=lower, sim_upper=upper)
    anchor, *members = list(s)[0][:4]
    chosen = [anchor]
    order = np.argsort(-cosine[anchor], kind="stable")
    for row in order:
        if len(chosen) == 4:
            break
        sim = cosine[anchor, row]
        if not (lower < sim < upper) or subs[row] != subs[anchor]:
            continue
        if products[row] in products[chosen] or texts[row] in {texts[c] for c in chosen}:
            continue
        if (cosine[row, chosen] >= upper).any():
            continue
        chosen.append(int(row))
    # Rows of one text are interchangeable views: compare texts, most similar first.
    assert [texts[m] for m in members] == [texts[c] for c in chosen[1:]]
    sims = cosine[anchor, members]
    assert (np.diff(sims) <= 1e-6).all() and (sims > lower).all()


def test_semi_hard_members_are_closer_than_grouped_members(corpus, cosine):
    def anchor_member_similarity(mode: str) -> float:
        batches = list(sampler(corpus, mode=mode))
        return float(
            np.mean([cosine[b[i], b[i + 1 : i + 4]].mean() for b in batches for i in (0, 4, 8, 12)])
        )

    assert anchor_member_similarity("semi_hard") > anchor_member_similarity("grouped") + 0.05


def test_semi_hard_negatives_are_much_harder_than_random(corpus):
    stats = {
        mode: sampler(corpus, mode=mode).epoch_statistics() for mode in ("random", "semi_hard")
    }
    assert stats["semi_hard"]["false_negatives_per_batch"] == 0
    ratio = (
        stats["semi_hard"]["mean_negative_similarity"] / stats["random"]["mean_negative_similarity"]
    )
    assert ratio >= 2.0, stats


# ---------------------------------------------------------------------------- other modes
def test_grouped_mode_groups_by_subcategory_without_repeated_products(corpus):
    _, products, subs, _ = corpus
    batches = list(sampler(corpus, mode="grouped"))
    groups = [b[i : i + 4] for b in batches for i in range(0, 16, 4)]
    homogeneous = [len(set(subs[g].tolist())) == 1 for g in groups]
    assert all(homogeneous[: len(groups) // 2]) and np.mean(homogeneous) >= 0.9
    for batch in batches:
        assert len(set(products[batch].tolist())) == len(batch)


def test_random_mode_is_uniform(corpus):
    n = len(corpus[0])
    s = sampler(corpus, mode="random", drop_last=False)
    first_batch_hits = Counter()
    epochs = 60
    for epoch in range(epochs):
        s.set_epoch(epoch)
        batches = list(s)
        assert sorted(np.concatenate(batches).tolist()) == list(range(n))
        first_batch_hits.update(batches[0])
    # Each row lands in the first batch with probability 16 / n: about 3 times in 60 epochs.
    counts = np.array([first_batch_hits[i] for i in range(n)])
    assert counts.mean() == pytest.approx(epochs * 16 / n)
    assert counts.max() <= 12 and (counts > 0).mean() > 0.8
    # Same-subcategory pairs happen at chance rate (4 equal subcategories: about 1/4).
    fraction = s.epoch_statistics()["same_group_fraction"]
    assert 0.15 < fraction < 0.35


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("mode", ["semi_hard", "grouped", "random"])
def test_batches_depend_only_on_seed_and_epoch(corpus, mode):
    a, b = sampler(corpus, mode=mode, seed=3), sampler(corpus, mode=mode, seed=3)
    a.set_epoch(5)
    b.set_epoch(5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(6)
    assert list(a) != first
    other_seed = sampler(corpus, mode=mode, seed=4)
    other_seed.set_epoch(5)
    assert list(other_seed) != first


@pytest.mark.parametrize("mode", ["semi_hard", "grouped", "random"])
def test_global_order_does_not_depend_on_replica_count(corpus, mode):
    single = sampler(corpus, mode=mode, num_replicas=1, rank=0)
    triple = sampler(corpus, mode=mode, num_replicas=3, rank=2)
    assert single.global_batches() == triple.global_batches()
    assert list(triple) == single.global_batches()[2 : 3 * len(triple) : 3]


# ---------------------------------------------------------------------------- coverage / ranks
@pytest.mark.parametrize("mode", ["semi_hard", "grouped", "random"])
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_drop_last_false_covers_every_row_exactly_once(mode, ranks):
    # 186 rows in batches of 16: 12 batches, divisible by 1, 2 and 3 ranks.
    texts, products, subs, cats = make_corpus(n_sub=4, per_sub=30, seed=1)
    corpus = (texts[:186], products[:186], subs[:186], cats[:186])
    s = sampler(corpus, mode=mode, drop_last=False)
    for epoch in (0, 1):
        per_rank = all_batches(s, ranks, epoch)
        assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == 12 // ranks
        rows = [r for batches in per_rank for batch in batches for r in batch]
        assert sorted(rows) == list(range(186))


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_are_disjoint_with_equal_length(corpus, ranks):
    n = len(corpus[0])
    s = sampler(corpus, mode="semi_hard", drop_last=True)
    per_rank = all_batches(s, ranks)
    assert len({len(b) for b in per_rank}) == 1
    assert len(per_rank[0]) == (n // 16) // ranks == len(s)
    row_sets = [{r for batch in batches for r in batch} for batches in per_rank]
    for i in range(ranks):
        for j in range(i + 1, ranks):
            assert not row_sets[i] & row_sets[j]
    covered = set().union(*row_sets)
    # About once: only the rows of the dropped batches (incomplete or not divisible) are missing.
    assert len(covered) == ranks * len(per_rank[0]) * 16


def test_drop_last_true_uses_each_row_at_most_once(corpus):
    s = sampler(corpus, mode="semi_hard")
    for epoch in range(4):
        s.set_epoch(epoch)
        counts = Counter(r for batch in s for r in batch)
        assert max(counts.values()) == 1
        assert len(counts) == len(s) * 16


def test_works_as_a_dataloader_batch_sampler(corpus):
    n = len(corpus[0])
    dataset = TensorDataset(torch.arange(n))
    s = sampler(corpus, mode="semi_hard", num_replicas=2, rank=1)
    loader = DataLoader(dataset, batch_sampler=s)
    assert len(loader) == len(s)
    got = [batch[0].tolist() for batch in loader]
    assert got == list(s)
