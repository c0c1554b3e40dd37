"""SyncMask masking (method.md §3): config, candidate words, attention reduction and the
invariants of the word / patch masks, on a tiny BERT tokenizer written in a temp folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from transformers import BertTokenizerFast

from lavis_syncmask.masking import (
    MaskingConfig,
    TokenTables,
    WordUnits,
    reduce_cross_attention,
    synchronized_masks,
    word_units,
)

VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] . , ! a the with at and is of "
    "red navy black white shirt dress jacket zip closure back front top collar "
    "pocket ##s ##per be ##ige soft fabric long sleeve logo print cotton"
).split()
TEXTS = [
    "red shirt with a zip closure at back.",
    "beige jacket, pockets and the soft fabric",
    "the .",  # no candidate word at all
    "navy dress with long sleeves, front logo print and zipper at the top",
    "white cotton collar",
]
P = 16


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizerFast:
    path: Path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(path), do_lower_case=True)


@pytest.fixture(scope="module")
def tables(tokenizer: BertTokenizerFast) -> TokenTables:
    return TokenTables.from_tokenizer(tokenizer)


def encode(tokenizer: BertTokenizerFast, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def random_attention(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, length, 1 + P, generator=gen).softmax(-1)[..., 1:]


def expected_words(k_ratio: float, n: int) -> int:
    return 0 if n == 0 else max(1, round(k_ratio * n))


def reference_word_attention(attention: torch.Tensor, units: WordUnits) -> torch.Tensor:
    """Loop version of the word attention, for comparison."""
    batch, width = units.candidate.shape
    out = torch.zeros(batch, width, attention.shape[-1])
    for b in range(batch):
        for w in range(width):
            rows = attention[b][units.word_ids[b] == w]
            if len(rows):
                out[b, w] = rows.mean(0)
    return out


# ---------------------------------------------------------------- config
def test_config_validates_and_lists_valid_keys() -> None:
    assert MaskingConfig.from_dict({"mlm_probs": [0.7, 0.2, 0.1]}).mlm_probs == (0.7, 0.2, 0.1)
    with pytest.raises(ValueError, match="valid keys.*mlm_ratio"):
        MaskingConfig.from_dict({"mlm_ration": 0.2})
    bad = [
        {"mlm_ratio": 1.5},
        {"mim_ratio": -0.1},
        {"sync_ratio": "1"},
        {"strategy": "attention"},
        {"sync_word_score": "mean"},
        {"sync_temperature": -1.0},
        {"sync_warmup_steps": 1.5},
        {"mlm_probs": (0.8, 0.1, 0.2)},
        {"mlm_probs": (0.9, 0.1)},
        {"sync_warmup_schedule": "cosine"},
    ]
    for values in bad:
        with pytest.raises(ValueError, match=next(iter(values))):
            MaskingConfig(**values)


def test_effective_sync_ratio_schedules() -> None:
    step = MaskingConfig(sync_ratio=0.8, sync_warmup_steps=10)
    assert [step.effective_sync_ratio(s) for s in (0, 9, 10, 50)] == [0.0, 0.0, 0.8, 0.8]
    linear = dataclasses.replace(step, sync_warmup_schedule="linear")
    assert linear.effective_sync_ratio(5) == pytest.approx(0.4)
    assert linear.effective_sync_ratio(0) == 0.0 and linear.effective_sync_ratio(10) == 0.8
    assert MaskingConfig(strategy="random").effective_sync_ratio(100) == 0.0


# ---------------------------------------------------------------- candidate words
def test_token_tables_flags(tokenizer: BertTokenizerFast, tables: TokenTables) -> None:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in VOCAB}
    assert tables.is_special.shape == (len(tokenizer),)
    assert all(tables.is_special[ids[t]] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
    assert not tables.is_special[ids["red"]]
    assert tables.is_continuation[ids["##s"]] and not tables.is_continuation[ids["be"]]
    assert all(tables.is_filtered[ids[t]] for t in (".", ",", "!", "a", "the", "with", "be"))
    # Stop-words of scikit-learn's list that name garment parts stay candidates.
    assert not any(tables.is_filtered[ids[t]] for t in ("back", "front", "top", "shirt"))
    assert tables.mask_token_id == ids["[MASK]"]
    moved = tables.to("cpu")
    assert torch.equal(moved.is_filtered, tables.is_filtered) and moved is not tables


def test_word_units_groups_pieces_and_drops_specials_padding_and_stopwords(
    tokenizer: BertTokenizerFast, tables: TokenTables
) -> None:
    ids, att = encode(tokenizer, ["beige pockets, the zipper", "a red shirt"])
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in ids.tolist()]
    assert tokens[0] == ["[CLS]", "be", "##ige", "pocket", "##s", ",", "the", "zip", "##per",
                         "[SEP]"]  # fmt: skip
    units = word_units(ids, att, tables)
    assert units.word_ids.tolist() == [
        [-1, 0, 0, 1, 1, -1, -1, 2, 2, -1],
        [-1, -1, 0, 1, -1, -1, -1, -1, -1, -1],
    ]
    assert units.candidate.tolist() == [[True, True, True], [True, True, False]]
    assert units.first_token.tolist() == [[1, 3, 7], [2, 3, 0]]
    assert units.num_candidates.tolist() == [3, 2]
    unfiltered = word_units(ids, att, tables, filter_words=False)
    assert unfiltered.word_ids[0].tolist() == [-1, 0, 0, 1, 1, 2, 3, 4, 4, -1]
    assert unfiltered.word_ids[1].tolist()[:5] == [-1, 0, 1, 2, -1]


def test_word_units_stray_continuation_starts_a_word(tables: TokenTables, tokenizer) -> None:
    cls, sep, pad = (tokenizer.convert_tokens_to_ids(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    s, red = tokenizer.convert_tokens_to_ids("##s"), tokenizer.convert_tokens_to_ids("red")
    ids = torch.tensor([[cls, s, s, red, sep, pad]])
    att = torch.tensor([[1, 1, 1, 1, 1, 0]])
    assert word_units(ids, att, tables).word_ids.tolist() == [[-1, 0, 0, 1, -1, -1]]
    with pytest.raises(ValueError, match="attention_mask"):
        word_units(ids, att[:, :3], tables)


# ---------------------------------------------------------------- attention reduction
def test_reduce_cross_attention_means_heads_and_layers_and_drops_cls() -> None:
    gen = torch.Generator().manual_seed(0)
    layers = [torch.rand(2, 3, 4, 1 + P, generator=gen) for _ in range(3)]
    out = reduce_cross_attention(layers)
    assert out.shape == (2, 4, P)
    expected = torch.stack(layers).mean(dim=(0, 2))[..., 1:]
    assert torch.allclose(out, expected, atol=1e-6)
    picked = reduce_cross_attention(layers, layers=[0, 2])
    assert torch.allclose(picked, (layers[0] + layers[2]).mean(1)[..., 1:] / 2, atol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        reduce_cross_attention(layers, layers=[3])
    with pytest.raises(ValueError, match="shape"):
        reduce_cross_attention([layers[0], layers[1][:, :2]])


# ---------------------------------------------------------------- mask invariants
CONFIGS = [
    MaskingConfig(sync_temperature=0.0),
    MaskingConfig(),
    MaskingConfig(sync_word_score="entropy", mlm_ratio=0.4, mim_ratio=0.5),
    MaskingConfig(sync_ratio=0.5, mlm_ratio=0.6),
    MaskingConfig(strategy="random", mlm_ratio=0.3, mim_ratio=0.1),
    MaskingConfig(sync_warmup_steps=5, sync_warmup_schedule="linear", mlm_ratio=1.0),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_masks_respect_candidates_budgets_and_whole_words(tokenizer, tables, config) -> None:
    ids, att = encode(tokenizer, TEXTS)
    units = word_units(ids, att, tables, config.sync_word_filter)
    attention = random_attention(*ids.shape)
    masks = synchronized_masks(
        attention, units, P, config, step=2, generator=torch.Generator().manual_seed(3)
    )
    # Never special or padding tokens, nor tokens outside candidate words.
    assert not (masks.token_mask & ~(att.bool() & ~tables.is_special[ids])).any()
    assert not (masks.token_mask & (units.word_ids < 0)).any()
    assert not (masks.word_mask & ~units.candidate).any()
    # Exact budgets, per sample, although the samples have different lengths.
    for b, n in enumerate(units.num_candidates.tolist()):
        assert int(masks.word_mask[b].sum()) == expected_words(config.mlm_ratio, n)
    assert masks.patch_mask.sum(1).tolist() == [round(config.mim_ratio * P)] * len(TEXTS)
    # Whole words: a token is masked exactly when its word is.
    for b in range(len(TEXTS)):
        for t, w in enumerate(units.word_ids[b].tolist()):
            assert bool(masks.token_mask[b, t]) == (w >= 0 and bool(masks.word_mask[b, w]))


def test_filtered_words_never_masked_even_when_everything_is_masked(tokenizer, tables) -> None:
    ids, att = encode(tokenizer, TEXTS)
    units = word_units(ids, att, tables)
    masks = synchronized_masks(random_attention(*ids.shape), units, P, MaskingConfig(mlm_ratio=1.0))
    stop_or_punct = tables.is_filtered[ids] & ~tables.is_continuation[ids]
    # "be" of "beige" is a stop-word on its own but part of a content word here.
    in_multi_piece = torch.nn.functional.pad(tables.is_continuation[ids][:, 1:], (0, 1))
    assert not (masks.token_mask & stop_or_punct & ~in_multi_piece).any()
    assert masks.token_mask.sum() == (units.word_ids >= 0).sum()  # ratio 1: every candidate


def test_temperature_zero_picks_top_scored_words_then_their_most_attended_patches(
    tokenizer, tables
) -> None:
    ids, att = encode(tokenizer, TEXTS)
    units = word_units(ids, att, tables)
    attention = random_attention(*ids.shape, seed=1)
    config = MaskingConfig(sync_temperature=0.0, mlm_ratio=0.4)
    masks = synchronized_masks(attention, units, P, config)
    word_att = reference_word_attention(attention, units)
    for b, n in enumerate(units.num_candidates.tolist()):
        scores = word_att[b, :n].amax(-1)
        k = expected_words(config.mlm_ratio, n)
        top = set(scores.topk(k).indices.tolist()) if n else set()
        assert set(masks.word_mask[b].nonzero().flatten().tolist()) == top
        if n:
            patch_scores = word_att[b, sorted(top)].sum(0)
            top_patches = set(patch_scores.topk(round(0.25 * P)).indices.tolist())
            assert set(masks.patch_mask[b].nonzero().flatten().tolist()) == top_patches
            assert torch.allclose(masks.patch_scores[b], patch_scores, atol=1e-6)


def test_entropy_score_prefers_concentrated_attention_over_a_higher_peak(tables) -> None:
    # Two one-piece words; word 0 has the lower peak but the sharper (lower-entropy) row.
    units = WordUnits(torch.tensor([[0, 1]]), torch.tensor([[True, True]]), torch.tensor([[0, 1]]))
    attention = torch.tensor([[[0.5, 0.5, 0.0, 0.0], [0.55, 0.15, 0.15, 0.15]]])
    config = MaskingConfig(sync_temperature=0.0, mlm_ratio=0.5, mim_ratio=0.5)
    by_max = synchronized_masks(attention, units, 4, config)
    by_entropy = synchronized_masks(
        attention, units, 4, dataclasses.replace(config, sync_word_score="entropy")
    )
    assert by_max.word_mask.tolist() == [[False, True]]
    assert by_entropy.word_mask.tolist() == [[True, False]]
    entropy_1 = -(0.55 * torch.log(torch.tensor(0.55)) + 0.45 * torch.log(torch.tensor(0.15)))
    expected = torch.tensor([-torch.log(torch.tensor(2.0)), -entropy_1])
    assert torch.allclose(by_entropy.word_scores[0], expected, atol=1e-5)
    assert by_entropy.patch_mask.tolist() == [[True, True, False, False]]


def test_temperature_zero_is_deterministic_and_draws_nothing(tokenizer, tables) -> None:
    ids, att = encode(tokenizer, TEXTS)
    units = word_units(ids, att, tables)
    attention = random_attention(*ids.shape)
    config = MaskingConfig(sync_temperature=0.0)
    rng_before = torch.get_rng_state()
    first = synchronized_masks(attention, units, P, config)
    assert torch.equal(torch.get_rng_state(), rng_before)
    torch.manual_seed(123)
    second = synchronized_masks(attention, units, P, config)
    assert torch.equal(first.token_mask, second.token_mask)
    assert torch.equal(first.patch_mask, second.patch_mask)


@pytest.mark.parametrize("config", [MaskingConfig(), MaskingConfig(strategy="random")])
def test_same_seed_same_masks_other_seed_other_masks(tokenizer, tables, config) -> None:
    ids, att = encode(tokenizer, TEXTS * 8)
    units = word_units(ids, att, tables)
    attention = random_attention(*ids.shape)

    def run(seed: int):
        gen = torch.Generator().manual_seed(seed)
        return synchronized_masks(attention, units, P, config, generator=gen)

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.token_mask, b.token_mask) and torch.equal(a.patch_mask, b.patch_mask)
    assert not (torch.equal(a.token_mask, c.token_mask) and torch.equal(a.patch_mask, c.patch_mask))


def test_inputs_are_not_mutated(tokenizer, tables) -> None:
    ids, att = encode(tokenizer, TEXTS)
    units = word_units(ids, att, tables)
    attention = random_attention(*ids.shape)
    copies = [t.clone() for t in (ids, att, attention, units.word_ids, units.candidate)]
    synchronized_masks(attention, units, P, MaskingConfig(sync_ratio=0.5), generator=None)
    for before, after in zip(copies, (ids, att, attention, units.word_ids, units.candidate)):
        assert torch.equal(before, after)


def test_batch_equals_one_sample_at_a_time(tokenizer, tables) -> None:
    ids, att = encode(tokenizer, TEXTS)
    attention = random_attention(*ids.shape, seed=4)
    for score in ("max", "entropy"):
        config = MaskingConfig(sync_temperature=0.0, sync_word_score=score, mlm_ratio=0.3)
        whole = synchronized_masks(attention, word_units(ids, att, tables), P, config)
        for b in range(len(TEXTS)):
            one = synchronized_masks(
                attention[b : b + 1], word_units(ids[b : b + 1], att[b : b + 1], tables), P, config
            )
            assert torch.equal(whole.token_mask[b : b + 1], one.token_mask)
            assert torch.equal(whole.patch_mask[b : b + 1], one.patch_mask)


def test_batch_without_any_candidate_word(tokenizer, tables) -> None:
    ids, att = encode(tokenizer, ["the .", "a , with"])
    units = word_units(ids, att, tables)
    assert units.candidate.shape == (2, 0)
    masks = synchronized_masks(random_attention(*ids.shape), units, P, MaskingConfig())
    assert not masks.token_mask.any() and masks.patch_mask.sum(1).tolist() == [4, 4]


def test_bad_attention_shape_is_reported(tokenizer, tables) -> None:
    ids, att = encode(tokenizer, TEXTS)
    units = word_units(ids, att, tables)
    with pytest.raises(ValueError, match="attention must be"):
        synchronized_masks(torch.rand(len(TEXTS), ids.shape[1], P + 1), units, P, MaskingConfig())
