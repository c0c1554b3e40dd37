"""The momentum teacher (an EMA copy of the student) and the ITC feature queue (ALBEF lineage,
method.md §2). The queue also stores product and text ids, so same-product and duplicate-text
entries count as positives rather than false negatives (method.md §4).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from lavis_syncmask.common.distributed import concat_all_gather

# Product ids of queue slots not filled yet: matches no real id.
EMPTY_ID = -(2**62)


def ramped_alpha(alpha: float, ramp_epochs: int, samples: dict) -> float:
    """The distillation weight for a training batch: `alpha` ramped up linearly over
    `ramp_epochs` epochs of updates, as LAVIS's ALBEF / BLIP do (constant when 0, or when the
    batch carries no `num_iters_per_epoch`, e.g. outside LAVIS's loop)."""
    per_epoch = samples.get("num_iters_per_epoch")
    if not ramp_epochs or not per_epoch:
        return alpha
    done = int(samples.get("epoch", 0)) * int(per_epoch) + int(samples.get("iters", 0))
    return alpha * min(1.0, done / (ramp_epochs * int(per_epoch)))


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off: the starting point of an EMA teacher."""
    teacher = copy.deepcopy(module)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(pairs: Sequence[tuple[nn.Module, nn.Module]], momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student, for every (student, teacher)."""
    for student, teacher in pairs:
        for p_s, p_t in zip(student.parameters(), teacher.parameters(), strict=True):
            p_t.lerp_(p_s.detach(), 1.0 - momentum)


class FeatureQueue(nn.Module):
    """Ring buffer of momentum ITC features `(D, Q)` for images and texts, with their ids."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.register_buffer("image_queue", nn.functional.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer("text_queue", nn.functional.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer("idx_queue", torch.full((size,), EMPTY_ID, dtype=torch.long))
        self.register_buffer("text_id_queue", torch.full((size,), EMPTY_ID, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @property
    def size(self) -> int:
        return self.image_queue.size(1)

    @torch.no_grad()
    def enqueue(
        self,
        image_feat: torch.Tensor,
        text_feat: torch.Tensor,
        product_ids: torch.Tensor,
        text_ids: torch.Tensor,
    ) -> None:
        """Add this step's features `(B, D)` from every rank; the queue size must be a multiple
        of the global batch so a step never wraps around the end."""
        image_feat, text_feat = concat_all_gather(image_feat), concat_all_gather(text_feat)
        product_ids, text_ids = concat_all_gather(product_ids), concat_all_gather(text_ids)
        batch = image_feat.size(0)
        if self.size % batch:
            raise ValueError(
                f"queue_size {self.size} must be a multiple of the global batch size {batch}"
            )
        ptr = int(self.queue_ptr)
        self.image_queue[:, ptr : ptr + batch] = image_feat.T
        self.text_queue[:, ptr : ptr + batch] = text_feat.T
        self.idx_queue[ptr : ptr + batch] = product_ids
        self.text_id_queue[ptr : ptr + batch] = text_ids
        self.queue_ptr[0] = (ptr + batch) % self.size
