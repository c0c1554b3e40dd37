"""BERT's 80/10/10 replacement of the words SyncMask chose for MLM (method.md section 3,
[ours] step 4, last sentence)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lavis_syncmask.masking.config import check_mlm_probs
from lavis_syncmask.masking.tokens import TokenTables

IGNORE_INDEX = -100  # the label cross-entropy skips


def apply_mlm_replacement(
    input_ids: torch.Tensor,
    token_mask: torch.Tensor,
    tables: TokenTables,
    vocab_size: int,
    probs: Sequence[float] = (0.8, 0.1, 0.1),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked copy of `(B, T)` ``input_ids`` and its MLM labels.

    Each position of ``token_mask`` `(B, T)` independently becomes [MASK] with ``probs[0]``,
    a uniformly drawn non-special token id below ``vocab_size`` with ``probs[1]``, and stays
    with ``probs[2]``. Labels are the original ids at masked positions and -100 elsewhere.
    ``input_ids`` is not modified; ``generator`` (on the ids' device) drives every draw.

    >>> ids, labels = apply_mlm_replacement(ids, masks.token_mask, tables, 30522)  # doctest: +SKIP
    """
    p_mask, p_random, _ = check_mlm_probs(probs)
    if input_ids.dim() != 2 or token_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids and token_mask must both be (B, T), got {tuple(input_ids.shape)} and "
            f"{tuple(token_mask.shape)}"
        )
    if not 0 < vocab_size <= tables.vocab_size:
        raise ValueError(
            f"vocab_size must be in [1, {tables.vocab_size}] (the tables' vocab), got {vocab_size}"
        )
    token_mask = token_mask.bool()
    device = input_ids.device
    labels = torch.where(token_mask, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    u = torch.rand(input_ids.shape, generator=generator, device=device)
    to_mask = token_mask & (u < p_mask)
    to_random = token_mask & (u >= p_mask) & (u < p_mask + p_random)
    allowed = torch.nonzero(~tables.is_special[:vocab_size].to(device)).squeeze(1)
    if allowed.numel() == 0:
        raise ValueError("the vocabulary has no non-special token to draw random replacements")
    pick = torch.randint(allowed.numel(), input_ids.shape, generator=generator, device=device)
    masked = torch.where(to_mask, torch.full_like(input_ids, tables.mask_token_id), input_ids)
    masked = torch.where(to_random, allowed[pick], masked)
    return masked, labels
