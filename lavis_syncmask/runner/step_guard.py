"""Keeping the live training state finite through bad steps (issue 20).

A bad step is a non-finite loss, or finite loss with non-finite gradients (a blow-up in one
step: an optimizer step on them would make every weight NaN). The epoch loop skips a bad
step's update, but the forward pass has already changed state outside autograd: the momentum
teacher's EMA step and the ITC feature queue (models/momentum.py), filled with NaN features
when the weights or the batch were bad. :class:`ForwardStateGuard` copies those tensors (every
buffer and frozen parameter) at the start of each update and puts them back after a bad one,
so after any number of bad steps the model, queues and optimizer are exactly as after the last
good update; the `run.max_bad_steps` checkpoint saves that state.

Cost: one copy of the buffers and frozen parameters (the momentum encoders: about the size of
the trainable encoders) kept on the model's device and refreshed once per update (a
device-to-device copy); and one gradient-norm reduction per update when
`run.max_grad_norm` is off (clipping computes it anyway). With fp16 the gradient scaler skips
updates on non-finite gradients itself, so the gradient check is left to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


def forward_state(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """What a forward pass may change outside autograd: buffers and frozen parameters."""
    module = getattr(model, "module", model)  # the model inside a DDP wrapper
    yield from module.named_buffers()
    for name, param in module.named_parameters():
        if not param.requires_grad:
            yield name, param


class ForwardStateGuard:
    """`save()` at the start of an update, `restore()` after a bad one (see the module).

    Everything is copied each time, even tensors that did not change: a change made through
    `.data` is invisible to version counters, and a stale copy put back would be wrong."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.tensors: dict[str, torch.Tensor] = {}
        self.saved: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def save(self) -> None:
        """Copy every buffer and frozen parameter (into the copies of the last save)."""
        self.tensors = dict(forward_state(self.model))
        for name, tensor in self.tensors.items():
            copy = self.saved.get(name)
            if copy is None or copy.shape != tensor.shape or copy.dtype != tensor.dtype:
                self.saved[name] = tensor.detach().clone()
            else:
                copy.copy_(tensor.detach())

    @torch.no_grad()
    def restore(self) -> None:
        """Put every buffer and frozen parameter back as it was at the last `save()`."""
        for name, tensor in self.tensors.items():
            tensor.copy_(self.saved[name])


def gradients_finite(model: nn.Module, max_grad_norm: float | None) -> bool:
    """Clip the gradients to `max_grad_norm` (None: no clipping) and say whether they are all
    finite, from their total norm (one reduction; under DDP every rank sees the same
    all-reduced gradients, so every rank decides alike)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if max_grad_norm is not None:
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    return bool(torch.isfinite(norm))


def non_finite_entries(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of a state dict holding NaN or infinity."""
    return [
        name
        for name, value in state.items()
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()
    ]
