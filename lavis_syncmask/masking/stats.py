"""Logging figures of one batch's masks: how well they follow the teacher's attention and, on
the synthetic set, how often they hit what the paired view shows (method.md sections 3 and 5).
"""

from __future__ import annotations

import torch

from lavis_syncmask.masking.select import SyncMasks, word_attention
from lavis_syncmask.masking.tokens import WordUnits


def _at_first_piece(flags: torch.Tensor, units: WordUnits, name: str) -> torch.Tensor:
    """`(B, W)` bool: ``flags`` `(B, T)` read at each word's first piece."""
    if flags.shape != units.word_ids.shape:
        raise ValueError(
            f"{name} must be (B, T) = {tuple(units.word_ids.shape)}, got {tuple(flags.shape)}"
        )
    return flags.bool().gather(1, units.first_token) & units.candidate


@torch.no_grad()
def mask_statistics(
    masks: SyncMasks,
    units: WordUnits,
    attention: torch.Tensor | None,
    *,
    token_visible: torch.Tensor | None = None,
    described_patches: torch.Tensor | None = None,
    content_token: torch.Tensor | None = None,
) -> dict[str, float]:
    """Batch-level (micro-averaged) figures; a ratio with an empty denominator is NaN.

    Always: ``masked_words_per_sample``, ``masked_word_share`` (of candidate words),
    ``masked_patch_share``. With ``attention`` `(B, T, P)`: ``attention_mass_covered``, the
    masked words' attention on masked patches over their attention on all patches (random
    patches give about ``mim_ratio``). With ``content_token`` `(B, T)` bool:
    ``content_word_share`` of masked words. With ``token_visible`` `(B, T)` bool:
    ``word_sync_precision`` (masked words whose first piece is visible) and its random
    baseline ``word_visible_share`` (of candidate words). With ``described_patches`` `(B, P)`
    bool: ``patch_sync_precision`` and its baseline ``patch_described_share``.

    >>> stats = mask_statistics(masks, units, attention)  # doctest: +SKIP
    >>> stats["attention_mass_covered"]  # doctest: +SKIP
    """
    words = masks.word_mask & units.candidate
    patches = masks.patch_mask
    n_words = words.sum().float()
    # (numerator, denominator) pairs, turned into floats with a single device sync at the end.
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
        "masked_words_per_sample": (n_words, torch.tensor(float(words.shape[0]))),
        "masked_word_share": (n_words, units.candidate.sum().float()),
        "masked_patch_share": (patches.sum().float(), torch.tensor(float(patches.numel()))),
    }
    if attention is not None:
        word_att = word_attention(attention, units) * words[..., None]
        covered = (word_att * patches[:, None, :]).sum()
        pairs["attention_mass_covered"] = (covered, word_att.sum())
    if content_token is not None:
        content = _at_first_piece(content_token, units, "content_token")
        pairs["content_word_share"] = ((content & words).sum().float(), n_words)
    if token_visible is not None:
        visible = _at_first_piece(token_visible, units, "token_visible")
        pairs["word_sync_precision"] = ((visible & words).sum().float(), n_words)
        pairs["word_visible_share"] = (visible.sum().float(), units.candidate.sum().float())
    if described_patches is not None:
        if described_patches.shape != patches.shape:
            raise ValueError(
                f"described_patches must be (B, P) = {tuple(patches.shape)}, got "
                f"{tuple(described_patches.shape)}"
            )
        described = described_patches.bool()
        pairs["patch_sync_precision"] = ((described & patches).sum().float(), patches.sum().float())
        pairs["patch_described_share"] = (
            described.sum().float(),
            torch.tensor(float(described.numel())),
        )
    device = words.device
    num = torch.stack([n.to(device) for n, _ in pairs.values()])
    den = torch.stack([d.to(device) for _, d in pairs.values()])
    values = torch.where(den > 0, num / den.clamp(min=1e-30), torch.full_like(num, float("nan")))
    return dict(zip(pairs, values.tolist(), strict=True))
