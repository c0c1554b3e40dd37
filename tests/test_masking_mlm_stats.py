"""SyncMask masking (method.md §3 step 4 and §5): BERT's 80/10/10 replacement and the logged
mask statistics, on hand-made token tables."""

from __future__ import annotations

import math

import pytest
import torch

from lavis_syncmask.masking import (
    SyncMasks,
    TokenTables,
    apply_mlm_replacement,
    mask_statistics,
    token_mask_from_words,
    word_units,
)

PAD, CLS, SEP, MASK, CONT = 0, 1, 2, 3, 4  # ids 5.. are words; 9 is a stop-word
V = 12


@pytest.fixture(scope="module")
def tables() -> TokenTables:
    special = torch.zeros(V, dtype=torch.bool)
    special[[PAD, CLS, SEP, MASK]] = True
    continuation = torch.zeros(V, dtype=torch.bool)
    continuation[CONT] = True
    filtered = torch.zeros(V, dtype=torch.bool)
    filtered[9] = True
    return TokenTables(special, continuation, filtered, MASK)


def test_replacement_proportions_and_labels(tables: TokenTables) -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, V, (200, 60), generator=gen)
    token_mask = torch.rand(200, 60, generator=gen) < 0.5
    ids_before, mask_before = ids.clone(), token_mask.clone()
    masked, labels = apply_mlm_replacement(ids, token_mask, tables, V, generator=gen)
    assert torch.equal(ids, ids_before) and torch.equal(token_mask, mask_before)
    assert torch.equal(labels, torch.where(token_mask, ids, torch.full_like(ids, -100)))
    assert torch.equal(masked[~token_mask], ids[~token_mask])
    chosen, original = masked[token_mask], ids[token_mask]
    n = chosen.numel()
    share_mask = float((chosen == MASK).sum()) / n
    share_random = float(((chosen != MASK) & (chosen != original)).sum()) / n
    share_kept = float((chosen == original).sum()) / n
    # 8 drawable ids (4..11), so a random draw repeats the original token 1/8 of the time.
    assert share_mask == pytest.approx(0.8, abs=0.02)
    assert share_random == pytest.approx(0.1 * 7 / 8, abs=0.015)
    assert share_kept == pytest.approx(0.1 + 0.1 / 8, abs=0.015)
    assert not tables.is_special[masked[masked != MASK]].any()


def test_replacement_extremes_and_errors(tables: TokenTables) -> None:
    ids = torch.full((4, 50), 6)
    everything = torch.ones(4, 50, dtype=torch.bool)
    all_mask, _ = apply_mlm_replacement(ids, everything, tables, V, probs=(1.0, 0.0, 0.0))
    assert all_mask.eq(MASK).all()
    gen = torch.Generator().manual_seed(1)
    all_random, _ = apply_mlm_replacement(ids, everything, tables, V, (0.0, 1.0, 0.0), gen)
    assert not tables.is_special[all_random].any() and all_random.unique().numel() > 4
    kept, labels = apply_mlm_replacement(ids, everything, tables, V, probs=(0.0, 0.0, 1.0))
    assert torch.equal(kept, ids) and torch.equal(labels, ids)
    with pytest.raises(ValueError, match="sum to 1"):
        apply_mlm_replacement(ids, everything, tables, V, probs=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="vocab_size"):
        apply_mlm_replacement(ids, everything, tables, V + 1)


def hand_example(tables: TokenTables):
    ids = torch.tensor([[CLS, 5, CONT, 6, SEP], [CLS, 7, 8, SEP, PAD]])
    att = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    units = word_units(ids, att, tables)
    attention = torch.zeros(2, 5, 4)
    attention[0, 1] = torch.tensor([0.4, 0.2, 0.1, 0.1])
    attention[0, 2] = torch.tensor([0.2, 0.2, 0.3, 0.1])  # word 0 of sample 0: [.3 .2 .2 .1]
    attention[0, 3] = torch.tensor([0.1, 0.1, 0.1, 0.1])
    attention[1, 1] = torch.tensor([0.2, 0.2, 0.2, 0.2])
    attention[1, 2] = torch.tensor([0.1, 0.1, 0.1, 0.5])
    word_mask = torch.tensor([[True, False], [False, True]])
    masks = SyncMasks(
        token_mask=token_mask_from_words(word_mask, units),
        word_mask=word_mask,
        patch_mask=torch.tensor([[True, True, False, False], [False, False, False, True]]),
        word_scores=torch.zeros(2, 2),
        patch_scores=torch.zeros(2, 4),
    )
    return units, attention, masks


def test_mask_statistics_on_a_hand_computed_example(tables: TokenTables) -> None:
    units, attention, masks = hand_example(tables)
    assert units.word_ids.tolist() == [[-1, 0, 0, 1, -1], [-1, 0, 1, -1, -1]]
    assert masks.token_mask.tolist() == [
        [False, True, True, False, False],
        [False, False, True, False, False],
    ]
    stats = mask_statistics(
        masks,
        units,
        attention,
        token_visible=torch.tensor([[0, 1, 0, 1, 0], [0, 1, 0, 0, 0]]).bool(),
        described_patches=torch.tensor([[1, 0, 0, 0], [0, 0, 0, 1]]).bool(),
        content_token=torch.tensor([[0, 1, 1, 1, 0], [0, 1, 0, 0, 0]]).bool(),
    )
    expected = {
        "masked_words_per_sample": 1.0,
        "masked_word_share": 2 / 4,
        "masked_patch_share": 3 / 8,
        "attention_mass_covered": (0.5 + 0.5) / (0.8 + 0.8),
        "content_word_share": 1 / 2,
        "word_sync_precision": 1 / 2,
        "word_visible_share": 3 / 4,
        "patch_sync_precision": 2 / 3,
        "patch_described_share": 2 / 8,
    }
    assert stats.keys() == expected.keys()
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, abs=1e-6), key


def test_mask_statistics_optional_parts_and_empty_masks(tables: TokenTables) -> None:
    units, _, masks = hand_example(tables)
    assert set(mask_statistics(masks, units, None)) == {
        "masked_words_per_sample",
        "masked_word_share",
        "masked_patch_share",
    }
    nothing = SyncMasks(
        masks.token_mask & False,
        masks.word_mask & False,
        masks.patch_mask,
        masks.word_scores,
        masks.patch_scores,
    )
    stats = mask_statistics(nothing, units, None, content_token=masks.token_mask)
    assert stats["masked_words_per_sample"] == 0.0 and math.isnan(stats["content_word_share"])
    with pytest.raises(ValueError, match="token_visible"):
        mask_statistics(masks, units, None, token_visible=torch.ones(2, 3, dtype=torch.bool))
