"""Loss functions of `syncmask_fashion`, on features rather than on the model (method.md §2-4):
ITC with queue, momentum distillation and same-product positives; ITM hard-negative sampling
that never picks a same-product or duplicate-text pair; MIM pixel regression.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def itc_loss(
    sim_i2t: torch.Tensor,
    sim_t2i: torch.Tensor,
    positives: torch.Tensor,
    sim_i2t_m: torch.Tensor | None = None,
    sim_t2i_m: torch.Tensor | None = None,
    alpha: float = 0.0,
) -> torch.Tensor:
    """Contrastive loss over `(B, B + Q)` similarity logits (already divided by temperature).

    `positives` `(B, B + Q)` marks every same-product / same-text pair; each row's target spreads
    evenly over them, so those pairs are not pushed apart. With teacher logits, the target is
    blended with the teacher's softmax (ALBEF momentum distillation).
    """
    sim_i2t, sim_t2i = sim_i2t.float(), sim_t2i.float()  # fp32 softmax, also under autocast
    targets = positives.float() / positives.float().sum(1, keepdim=True)
    t_i2t = t_t2i = targets
    if sim_i2t_m is not None and sim_t2i_m is not None and alpha > 0:
        t_i2t = alpha * F.softmax(sim_i2t_m.float(), dim=1) + (1 - alpha) * targets
        t_t2i = alpha * F.softmax(sim_t2i_m.float(), dim=1) + (1 - alpha) * targets
    loss_i2t = -(F.log_softmax(sim_i2t, dim=1) * t_i2t).sum(1).mean()
    loss_t2i = -(F.log_softmax(sim_t2i, dim=1) * t_t2i).sum(1).mean()
    return (loss_i2t + loss_t2i) / 2


def sample_hard_negatives(
    sim: torch.Tensor, forbidden: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One negative column per row of `sim` `(B, B)`, drawn from softmax(sim) with the
    `forbidden` `(B, B)` entries (self, same product, duplicate text) given zero probability.

    Returns `(index (B,), valid (B,))`; a row whose every column is forbidden gets `valid=False`
    and an arbitrary index, and its ITM pair must be left out of the loss.
    """
    with torch.no_grad():
        weights = F.softmax(sim.float(), dim=1) + 1e-8  # +eps: underflow never empties a row
        weights = weights.masked_fill(forbidden, 0.0)
        valid = weights.sum(1) > 0
        weights[~valid] = 1.0
        index = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    return index, valid


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """`(B, C, H, W)` -> `(B, P, patch_size * patch_size * C)`, patches in row-major order."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def mim_loss(
    pred: torch.Tensor,
    images: torch.Tensor,
    patch_mask: torch.Tensor,
    patch_size: int,
    norm_pix: bool = True,
) -> torch.Tensor:
    """Mean squared error of predicted pixels `(B, P, p*p*C)` on masked patches only; with
    `norm_pix` each target patch is normalised by its own mean and std (MAE)."""
    target = patchify(images.float(), patch_size)
    if norm_pix:
        mean = target.mean(-1, keepdim=True)
        var = target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = (pred.float() - target.float()).pow(2).mean(-1)
    mask = patch_mask.float()
    return (per_patch * mask).sum() / mask.sum().clamp(min=1.0)
