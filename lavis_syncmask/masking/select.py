"""Synchronized attentional masking: teacher cross-attention -> MLM word mask and MIM patch
mask (method.md section 3, [ours] steps 2 and 4-7), vectorised over the batch.

Random masking (strategy ``random``, no attention, or warm-up) runs the same code with the
scores replaced by uniform noise, so ablations differ only in the scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lavis_syncmask.common.precision import full_precision
from lavis_syncmask.masking.config import MaskingConfig
from lavis_syncmask.masking.tokens import WordUnits


@dataclass(frozen=True)
class SyncMasks:
    """Masks of one batch, and the scores they were chosen by (for logging)."""

    token_mask: torch.Tensor  # (B, T) bool: every piece of every masked word
    word_mask: torch.Tensor  # (B, W) bool
    patch_mask: torch.Tensor  # (B, P) bool
    word_scores: torch.Tensor  # (B, W) float; noise when the masks are random
    patch_scores: torch.Tensor  # (B, P) float


def reduce_cross_attention(
    attentions: Sequence[torch.Tensor], layers: Sequence[int] | None = None
) -> torch.Tensor:
    """Mean over heads and the selected fusion layers, image-CLS column dropped.

    ``attentions``: one `(B, H, T, 1 + P)` probability tensor per fusion layer; ``layers``
    indexes into that sequence (None = all). Returns `(B, T, P)`.

    >>> reduce_cross_attention([torch.full((2, 4, 5, 10), 0.1)]).shape
    torch.Size([2, 5, 9])
    """
    if len(attentions) == 0:
        raise ValueError("reduce_cross_attention needs at least one attention tensor")
    chosen = list(range(len(attentions))) if layers is None else list(layers)
    if not chosen:
        raise ValueError("reduce_cross_attention: `layers` selects no layer")
    bad = [i for i in chosen if not -len(attentions) <= i < len(attentions)]
    if bad:
        raise ValueError(f"layers {bad} out of range for {len(attentions)} attention tensors")
    shape = attentions[chosen[0]].shape
    for i in chosen:
        if attentions[i].dim() != 4 or attentions[i].shape != shape or shape[-1] < 2:
            raise ValueError(
                f"attention tensors must share one (B, H, T, 1 + P) shape with P >= 1; layer {i} "
                f"has {tuple(attentions[i].shape)}, layer {chosen[0]} {tuple(shape)}"
            )
    total = sum(attentions[i].float().mean(dim=1) for i in chosen)
    return (total / len(chosen))[..., 1:]


def word_attention(attention: torch.Tensor, units: WordUnits) -> torch.Tensor:
    """`(B, W, P)`: each candidate word's attention row, the mean of its pieces' rows of
    ``attention`` `(B, T, P)`; zero rows for empty slots."""
    batch, length = units.word_ids.shape
    width = units.candidate.shape[1]
    if attention.dim() != 3 or attention.shape[:2] != (batch, length):
        raise ValueError(
            f"attention must be (B, T, P) = ({batch}, {length}, P), got {tuple(attention.shape)}"
        )
    patches = attention.shape[2]
    member = units.word_ids >= 0
    # One flat index per (sample, word) so a single index_add covers the whole batch.
    offsets = torch.arange(batch, device=attention.device)[:, None] * width
    flat = (offsets + units.word_ids)[member]
    rows = attention.float()[member]
    sums = attention.new_zeros(batch * width, patches, dtype=torch.float32).index_add_(
        0, flat, rows
    )
    counts = attention.new_zeros(batch * width, dtype=torch.float32).index_add_(
        0, flat, torch.ones_like(flat, dtype=torch.float32)
    )
    return (sums / counts.clamp(min=1.0)[:, None]).view(batch, width, patches)


def word_scores(word_att: torch.Tensor, kind: str) -> torch.Tensor:
    """`(B, W)` grounding score of each word from its `(B, W, P)` attention row: the peak
    (``"max"``) or the negative entropy of the row normalised over patches (``"entropy"``)."""
    if kind == "max":
        return word_att.amax(dim=-1)
    if kind == "entropy":
        q = word_att / word_att.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        return torch.xlogy(q, q).sum(dim=-1)
    raise ValueError(f"word score must be 'max' or 'entropy', got {kind!r}")


def _budget(ratio: float, count: torch.Tensor) -> torch.Tensor:
    # float64 and round-half-even, so the budget equals Python's round(ratio * count).
    return torch.round(count.double() * ratio).long()


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """`(B, N)` 0-based descending rank of each entry (stable: ties go to the lower index)."""
    order = scores.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return ranks.scatter_(1, order, positions)


def _uniform(
    shape: tuple[int, ...], like: torch.Tensor, gen: torch.Generator | None
) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=like.device, dtype=torch.float32)


def select_top(
    scores: torch.Tensor,
    candidate: torch.Tensor,
    budget: torch.Tensor,
    sync_ratio: float,
    temperature: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`(B, N)` bool: exactly ``budget[b]`` candidates of each row of `(B, N)` ``scores``.

    ``round(sync_ratio * budget)`` go to the highest scores after Gumbel noise of scale
    ``temperature * std`` of the row's candidate scores (Gumbel top-k: a draw without
    replacement from ``softmax(score / scale)``); when all scores of a row tie, the scale is
    ``temperature`` so ties break uniformly. The rest are uniform among the candidates left.
    With ``temperature == 0`` and ``sync_ratio == 1`` nothing is drawn. ``budget`` `(B,)`
    must not exceed the row's candidates.
    """
    batch, size = scores.shape
    scores = scores.float()
    if temperature > 0 and size:
        count = candidate.sum(dim=1, keepdim=True).clamp(min=1)
        mean = (scores * candidate).sum(dim=1, keepdim=True) / count
        var = (((scores - mean) * candidate) ** 2).sum(dim=1, keepdim=True) / count
        std = var.sqrt()
        scale = temperature * torch.where(std > 0, std, torch.ones_like(std))
        u = _uniform((batch, size), scores, generator).clamp(1e-12, 1.0 - 1e-7)
        scores = scores - scale * torch.log(-torch.log(u))
    # Finite scores rank every candidate (even a NaN one) above the -inf non-candidates.
    scores = torch.nan_to_num(scores, nan=-1e30, posinf=1e30, neginf=-1e30)
    neg_inf = torch.full_like(scores, float("-inf"))
    synced = _budget(sync_ratio, budget)
    chosen = (_ranks(torch.where(candidate, scores, neg_inf)) < synced[:, None]) & candidate
    if sync_ratio < 1:
        noise = _uniform((batch, size), scores, generator)
        left = candidate & ~chosen
        extra = _ranks(torch.where(left, noise, neg_inf)) < (budget - synced)[:, None]
        chosen = chosen | (extra & left)
    return chosen


@torch.no_grad()
def synchronized_masks(
    attention: torch.Tensor | None,
    units: WordUnits,
    num_patches: int,
    config: MaskingConfig,
    *,
    step: int = 0,
    generator: torch.Generator | None = None,
) -> SyncMasks:
    """MLM word mask and MIM patch mask of a batch from the teacher's reduced cross-attention
    ``attention`` `(B, T, P)` (None: random masks).

    Words: ``k_w = max(1, round(mlm_ratio * n))`` of each sample's ``n`` candidates (0 if
    none), by :func:`word_scores`. Patches: ``k_p = round(mim_ratio * P)``, scored by
    ``s_p = sum over masked words w of A_word[w, p]``. Both go through :func:`select_top` with
    ``config.effective_sync_ratio(step)``; ``generator`` (on the tensors' device) drives every
    draw, the global RNG when None.

    >>> masks = synchronized_masks(att, units, 256, MaskingConfig())  # doctest: +SKIP
    >>> masks.token_mask.shape, masks.patch_mask.shape  # (B, T), (B, P)  # doctest: +SKIP
    """
    batch, length = units.word_ids.shape
    width = units.candidate.shape[1]
    if num_patches < 1:
        raise ValueError(f"num_patches must be >= 1, got {num_patches}")
    if attention is not None and attention.shape != (batch, length, num_patches):
        raise ValueError(
            f"attention must be (B, T, P) = ({batch}, {length}, {num_patches}), got "
            f"{tuple(attention.shape)}"
        )
    ratio = config.effective_sync_ratio(step)
    use_attention = attention is not None and ratio > 0
    # Random masks: plain top-k of uniform noise scores is a uniform draw of k candidates.
    temperature = config.sync_temperature if use_attention else 0.0
    ratio = ratio if use_attention else 1.0
    device = units.word_ids.device
    n_words = units.num_candidates
    k_words = torch.where(n_words > 0, _budget(config.mlm_ratio, n_words).clamp(min=1), 0)
    if use_attention:
        word_att = word_attention(attention, units)
        w_scores = word_scores(word_att, config.sync_word_score)
    else:
        w_scores = _uniform((batch, width), units.word_ids, generator)
    word_mask = select_top(w_scores, units.candidate, k_words, ratio, temperature, generator)
    if use_attention:
        with full_precision(device):  # autocast would run this einsum in 16 bits
            p_scores = torch.einsum("bw,bwp->bp", word_mask.float(), word_att.float())
    else:
        p_scores = _uniform((batch, num_patches), units.word_ids, generator)
    k_patches = _budget(config.mim_ratio, torch.full((batch,), num_patches, device=device))
    every_patch = torch.ones(batch, num_patches, dtype=torch.bool, device=device)
    patch_mask = select_top(p_scores, every_patch, k_patches, ratio, temperature, generator)
    return SyncMasks(
        token_mask=token_mask_from_words(word_mask, units),
        word_mask=word_mask,
        patch_mask=patch_mask,
        word_scores=w_scores,
        patch_scores=p_scores,
    )


def token_mask_from_words(word_mask: torch.Tensor, units: WordUnits) -> torch.Tensor:
    """`(B, T)` bool: the tokens of the words set in ``word_mask`` `(B, W)`."""
    width = word_mask.shape[1]
    padded = torch.nn.functional.pad(word_mask, (0, 1), value=False)  # slot W: "no word"
    index = torch.where(units.word_ids >= 0, units.word_ids, torch.full_like(units.word_ids, width))
    return padded.gather(1, index)
