"""SyncMask masking (method.md §3, step 6): random masks are uniform, and `sync_ratio`,
Gumbel temperature and warm-up move between random and attention-chosen masks as documented.
Frequency checks replicate one sample many times in one batch, with a fixed seed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lavis_syncmask.masking import MaskingConfig, WordUnits, synchronized_masks

N_WORDS, P, DRAWS = 7, 16, 3000


def replicated_units(draws: int = DRAWS) -> WordUnits:
    """[CLS] w0 .. w6 [SEP], one piece per word, repeated ``draws`` times."""
    word_ids = torch.tensor([-1, *range(N_WORDS), -1]).expand(draws, -1)
    candidate = torch.ones(draws, N_WORDS, dtype=torch.bool)
    first_token = torch.arange(1, N_WORDS + 1).expand(draws, -1)
    return WordUnits(word_ids.clone(), candidate, first_token.clone())


def peaked_attention(draws: int = DRAWS) -> torch.Tensor:
    """Word w looks at patch w with weight (7 - w) / 10: word 0 is the best grounded, and the
    patches it looks at are the most attended."""
    att = torch.full((N_WORDS + 2, P), 0.01)
    for w in range(N_WORDS):
        att[w + 1, w] = (N_WORDS - w) / 10
    return att.expand(draws, -1, -1).clone()


def chi_square(mask: torch.Tensor) -> float:
    """Pearson statistic of how often each column is masked, against equal frequencies."""
    counts = mask.sum(0).double()
    expected = counts.sum() / counts.numel()
    return float(((counts - expected) ** 2 / expected).sum())


def run(config: MaskingConfig, step: int = 0, seed: int = 0, attention: bool = True):
    gen = torch.Generator().manual_seed(seed)
    att = peaked_attention() if attention else None
    return synchronized_masks(att, replicated_units(), P, config, step=step, generator=gen)


def test_random_strategy_masks_words_and_patches_uniformly() -> None:
    masks = run(MaskingConfig(strategy="random", mlm_ratio=0.3))
    assert masks.word_mask.sum(1).eq(2).all() and masks.patch_mask.sum(1).eq(4).all()
    # df 6 and 15; the 1e-4 quantiles are about 27 and 42.
    assert chi_square(masks.word_mask) < 30
    assert chi_square(masks.patch_mask) < 45
    # The same check catches attention-chosen masks: they are anything but uniform.
    synced = run(MaskingConfig(mlm_ratio=0.3, sync_temperature=0.0))
    assert chi_square(synced.word_mask) > 1000 and chi_square(synced.patch_mask) > 1000


def test_sync_ratio_zero_and_no_attention_are_the_random_strategy() -> None:
    random = run(MaskingConfig(strategy="random"), seed=5)
    for masks in (
        run(MaskingConfig(sync_ratio=0.0), seed=5),
        run(MaskingConfig(), seed=5, attention=False),
    ):
        assert torch.equal(masks.word_mask, random.word_mask)
        assert torch.equal(masks.patch_mask, random.patch_mask)


def test_partial_sync_ratio_takes_top_share_then_uniform_rest() -> None:
    # k_w = round(0.6 * 7) = 4: round(0.5 * 4) = 2 by score (words 0, 1), 2 among the other 5.
    masks = run(MaskingConfig(mlm_ratio=0.6, sync_ratio=0.5, sync_temperature=0.0))
    assert masks.word_mask[:, :2].all()
    assert masks.word_mask[:, 2:].sum(1).eq(2).all()
    assert chi_square(masks.word_mask[:, 2:]) < 25  # df 4
    # Patches: 2 of 4 by score, so the rest is spread over the 14 others.
    assert masks.patch_mask.sum(1).eq(4).all()
    assert chi_square(masks.patch_mask[:, 2:]) < 45


def test_temperature_moves_from_top_k_towards_uniform() -> None:
    base = MaskingConfig(mlm_ratio=0.3)
    exact = run(dataclasses.replace(base, sync_temperature=0.0))
    assert exact.word_mask[:, :2].all()
    mild = run(dataclasses.replace(base, sync_temperature=0.1))
    share_top = float(mild.word_mask[:, :2].float().mean())
    assert 0.9 < share_top < 1.0  # mostly the best-grounded words, not always
    hot = run(dataclasses.replace(base, sync_temperature=100.0))
    assert chi_square(hot.word_mask) < 40


@pytest.mark.parametrize("schedule", ["step", "linear"])
def test_warmup_gives_random_masks_then_synchronized_ones(schedule: str) -> None:
    config = MaskingConfig(
        sync_warmup_steps=10, sync_warmup_schedule=schedule, sync_temperature=0.0, mlm_ratio=0.6
    )
    random = run(MaskingConfig(strategy="random", mlm_ratio=0.6), seed=2)
    warm = run(config, step=0, seed=2)
    assert torch.equal(warm.word_mask, random.word_mask)
    assert torch.equal(warm.patch_mask, random.patch_mask)
    after = run(config, step=10, seed=2)
    assert after.word_mask[:, :4].all() and not after.word_mask[:, 4:].any()
    assert after.patch_mask[:, :4].all()
    middle = run(config, step=5, seed=2)
    if schedule == "step":
        assert torch.equal(middle.word_mask, random.word_mask)
    else:  # half of the budget (2 of 4 words) chosen by attention
        assert middle.word_mask[:, :2].all() and not middle.word_mask[:, 2:4].all()
