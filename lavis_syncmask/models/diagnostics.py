"""Diagnostics on the synthetic catalogue's ground truth (method.md section 5), used only for
statistics, never for training: map the recorded visibility onto a model's tokens and patch grid
(which tokens denote something visible in the paired view, which patches lie on a described
region), and compare masking strategies on one trained teacher (its cross-attention computed once
per batch, each masking config picking its words and patches from it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lavis_syncmask.masking import (
    MaskingConfig,
    mask_statistics,
    synchronized_masks,
    word_units,
)
from lavis_syncmask.models.backbones import encode_image


def visible_tokens(offsets: torch.Tensor, spans: Sequence[Sequence[Sequence[int]]]) -> torch.Tensor:
    """`(B, T)` bool: tokens whose character range `offsets` `(B, T, 2)` lies inside one of that
    sample's visible-word spans `[(start, end), ...]`. Special tokens (empty range) are False."""
    batch, length = offsets.shape[:2]
    width = max((len(s) for s in spans), default=0)
    if width == 0:
        return torch.zeros(batch, length, dtype=torch.bool, device=offsets.device)
    table = torch.full((batch, width, 2), -1, dtype=torch.long)
    for row, sample_spans in enumerate(spans):
        if len(sample_spans):
            table[row, : len(sample_spans)] = torch.as_tensor(sample_spans, dtype=torch.long)
    table = table.to(offsets.device)
    start, end = offsets[..., 0:1], offsets[..., 1:2]  # (B, T, 1)
    inside = (start >= table[:, None, :, 0]) & (end <= table[:, None, :, 1])
    return inside.any(-1) & (end.squeeze(-1) > start.squeeze(-1))


def described_patch_grid(described: torch.Tensor, grid: int) -> torch.Tensor:
    """Resample `(B, G, G)` described-patch flags (16x16 at 256 px) to the model's `(B, grid,
    grid)`: a coarser cell is described if any of its fine cells is; a finer one copies its
    parent."""
    source = described.float().unsqueeze(1)
    if described.shape[-1] >= grid:
        out = F.adaptive_max_pool2d(source, grid)
    else:
        out = F.interpolate(source, size=(grid, grid), mode="nearest")
    return out.squeeze(1) > 0.5


def mask_stats(
    model: Any, samples: dict[str, Any], tok: Any, masks: Any, units: Any, attention: Any
) -> dict[str, float]:
    """Logging statistics of one batch's masks; the visibility fields of the synthetic
    catalogue, when the batch carries them, add word / patch sync precision."""
    token_visible = described = None
    if "visible_spans" in samples:
        token_visible = visible_tokens(tok.offset_mapping, samples["visible_spans"])
    if "described_patches" in samples:
        described = described_patch_grid(samples["described_patches"], model.grid)
        described = described.to(model.device).flatten(1)
    content = (
        word_units(tok.input_ids, tok.attention_mask, model.token_tables(), True).word_ids >= 0
    )
    return mask_statistics(
        masks,
        units,
        attention,
        token_visible=token_visible,
        described_patches=described,
        content_token=content,
    )


@torch.no_grad()
def compare_masking(
    model: Any, samples: dict[str, Any], configs: dict[str, MaskingConfig]
) -> dict[str, dict[str, float]]:
    """Mask statistics of each config in `configs` on one batch, with `model`'s teacher as it
    is now (no EMA update; every config is evaluated past its warm-up).

    >>> compare_masking(model, batch, {"syncmask": cfg, "random": random_cfg})  # doctest: +SKIP
    {'syncmask': {'word_sync_precision': ...}, 'random': {...}}
    """
    tok = model.tokenize(list(samples["text_input"]), offsets="visible_spans" in samples)
    image_embeds_m = encode_image(model.visual_encoder_m, samples["image"].to(model.device))
    text_m = model.encode_text(tok.input_ids, tok.attention_mask, model.text_encoder_m)
    attention = model.teacher_attention(
        text_m.last_hidden_state, tok.attention_mask, image_embeds_m
    )
    results = {}
    for name, config in configs.items():
        tables = model.token_tables()
        units = word_units(tok.input_ids, tok.attention_mask, tables, config.sync_word_filter)
        masks = synchronized_masks(
            attention, units, model.grid**2, config, step=config.sync_warmup_steps
        )
        results[name] = mask_stats(model, samples, tok, masks, units, attention)
    return results
