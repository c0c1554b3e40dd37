"""Which pairs of a batch are false negatives (method.md section 4, [ours]).

Two samples that show the same product, or carry the same text, must not be pushed apart
by ITC or drawn as ITM hard negatives. The semi-hard batch sampler keeps such pairs out of a
batch; the losses use this mask to ignore the ones that still meet (queue entries, other
ranks' samples, near-duplicate products with identical text).
"""

from __future__ import annotations

import torch

__all__ = ["false_negative_mask", "itc_targets", "itm_forbidden_pairs"]


def _check_ids(name: str, ids: torch.Tensor) -> None:
    if not isinstance(ids, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(ids).__name__}")
    if ids.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.is_complex():
        raise ValueError(f"{name} must hold integer ids, got dtype {ids.dtype}")


def false_negative_mask(
    product_ids_a: torch.Tensor,
    product_ids_b: torch.Tensor,
    text_ids_a: torch.Tensor | None = None,
    text_ids_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pairs that must not count as negatives: same product, or same text.

    Args:
        product_ids_a: `(A,)` integer product ids of the first side (e.g. the batch).
        product_ids_b: `(B,)` integer product ids of the second side (e.g. batch + queue).
        text_ids_a: optional `(A,)` integer ids of the exact texts (equal text, equal id).
        text_ids_b: optional `(B,)`; must be given exactly when `text_ids_a` is.

    Returns:
        `(A, B)` bool tensor on `product_ids_a`'s device; True where the pair is a false
        negative. The diagonal of a batch against itself is True (a sample is its own positive).

    Example:
        >>> false_negative_mask(torch.tensor([1, 2]), torch.tensor([2, 3, 1]))
        tensor([[False, False,  True],
                [ True, False, False]])
    """
    _check_ids("product_ids_a", product_ids_a)
    _check_ids("product_ids_b", product_ids_b)
    if (text_ids_a is None) != (text_ids_b is None):
        raise ValueError("text_ids_a and text_ids_b must be given together (or both None)")
    device = product_ids_a.device
    mask = product_ids_a[:, None] == product_ids_b.to(device)[None, :]
    if text_ids_a is not None and text_ids_b is not None:
        _check_ids("text_ids_a", text_ids_a)
        _check_ids("text_ids_b", text_ids_b)
        if text_ids_a.shape != product_ids_a.shape:
            raise ValueError(
                f"text_ids_a has shape {tuple(text_ids_a.shape)}, "
                f"product_ids_a has {tuple(product_ids_a.shape)}"
            )
        if text_ids_b.shape != product_ids_b.shape:
            raise ValueError(
                f"text_ids_b has shape {tuple(text_ids_b.shape)}, "
                f"product_ids_b has {tuple(product_ids_b.shape)}"
            )
        same_text = text_ids_a.to(device)[:, None] == text_ids_b.to(device)[None, :]
        mask = mask | same_text
    return mask


def itc_targets(
    product_ids: torch.Tensor,
    text_ids: torch.Tensor,
    queue_product_ids: torch.Tensor,
    queue_text_ids: torch.Tensor,
    handle_false_negatives: bool = True,
) -> torch.Tensor:
    """`(B, B + Q)` ITC positives of a batch against itself and the queue: same product or
    same text, or, with `handle_false_negatives` off, each sample's own pair only (LAVIS's
    ALBEF pretraining, where the rest of the row are negatives)."""
    if not handle_false_negatives:
        n = len(product_ids)
        return torch.eye(n, n + len(queue_product_ids), dtype=torch.bool, device=product_ids.device)
    return false_negative_mask(
        product_ids,
        torch.cat([product_ids, queue_product_ids.to(product_ids.device)]),
        text_ids,
        torch.cat([text_ids, queue_text_ids.to(text_ids.device)]),
    )


def itm_forbidden_pairs(
    product_ids: torch.Tensor,
    text_ids: torch.Tensor,
    text_similarity: torch.Tensor | None = None,
    near_duplicate_sim: float = 1.0,
    handle_false_negatives: bool = True,
) -> torch.Tensor:
    """`(B, B)` pairs never drawn as ITM hard negatives: same product, same text, or texts at
    least `near_duplicate_sim` alike (`text_similarity`, method.md section 4), so the rule holds
    whatever the batch sampler put together. With `handle_false_negatives` off, only each
    sample's own pair (LAVIS's ALBEF)."""
    if not handle_false_negatives:
        return torch.eye(len(product_ids), dtype=torch.bool, device=product_ids.device)
    forbidden = false_negative_mask(product_ids, product_ids, text_ids, text_ids)
    if text_similarity is not None:
        forbidden = forbidden | (text_similarity.to(forbidden.device) >= near_duplicate_sim)
    return forbidden
