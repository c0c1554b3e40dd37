"""Map the synthetic catalogue's ground truth (method.md §5) onto a model's tokens and patch
grid: which tokens denote something visible in the paired view, and which patches lie on a
region the text describes. Used only for the sync-precision statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


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
