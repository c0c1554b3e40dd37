"""`syncmask_warmup_cosine_step`: linear warm-up, then cosine decay, per optimizer update.

LAVIS's `linear_warmup_cosine_lr` warms up within epoch 0 and then decays once per epoch, so
an 8-epoch run holds each rate for a whole epoch. This scheduler is the benchmark's recipe
(issue 19): the rate moves on every optimizer update, `warmup_steps` updates (or
`warmup_share` of all updates) rising linearly from `warmup_lr` to `init_lr`, then a cosine to
`min_lr` over the remaining updates. It uses LAVIS's own `warmup_lr_schedule` and
`cosine_lr_schedule` and is registered in LAVIS's lr-scheduler registry, so `run.lr_sched`
picks it like LAVIS's own.

It is stateless: the rate is a function of (epoch, iteration), so a resumed run (mid-epoch
too) gets the same rate as an uninterrupted one. The loop calls `step(cur_epoch, cur_step)`
before every micro-batch; with `accum_grad_iters` = k the update index is `cur_step // k`, so
the rate changes once per optimizer update and accumulation leaves the schedule unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lavis.common.optims import cosine_lr_schedule, warmup_lr_schedule
from lavis.common.registry import registry

STEP_SCHEDULER = "syncmask_warmup_cosine_step"


@dataclass(frozen=True)
class UpdateClock:
    """Where an (epoch, iteration) falls in a run counted in optimizer updates."""

    iters_per_epoch: int
    accum_grad_iters: int = 1
    max_epoch: int = 1
    max_steps: int | None = None  # stop after this many updates (run.max_steps)

    def __post_init__(self) -> None:
        if self.iters_per_epoch < 1 or self.accum_grad_iters < 1 or self.max_epoch < 1:
            raise ValueError(
                "the step schedule needs iters_per_epoch, accum_grad_iters and max_epoch >= 1, "
                f"got {self.iters_per_epoch}, {self.accum_grad_iters}, {self.max_epoch}"
            )
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"run.max_steps must be >= 1 or null, got {self.max_steps}")

    @property
    def updates_per_epoch(self) -> int:
        # The loop applies a partial group at the end of an epoch: it is an update too.
        return math.ceil(self.iters_per_epoch / self.accum_grad_iters)

    @property
    def total_updates(self) -> int:
        total = self.max_epoch * self.updates_per_epoch
        return total if self.max_steps is None else min(total, self.max_steps)

    def update_index(self, epoch: int, iteration: int) -> int:
        """0-based index of the optimizer update that micro-batch `iteration` belongs to."""
        return epoch * self.updates_per_epoch + iteration // self.accum_grad_iters


def warmup_updates(total: int, warmup_steps: int, warmup_share: float | None) -> int:
    """`warmup_share` of `total` updates (at least 1) when a share is set, else `warmup_steps`."""
    if warmup_share is None:
        return warmup_steps
    if not 0.0 <= warmup_share < 1.0:
        raise ValueError(f"run.warmup_share must be in [0, 1) or null, got {warmup_share}")
    return max(1, int(warmup_share * total))


@registry.register_lr_scheduler(STEP_SCHEDULER)
class WarmupCosineStepScheduler:
    """LAVIS scheduler interface (`step(cur_epoch, cur_step)`), rate set per optimizer update.
    Takes LAVIS's constructor arguments plus the runner's `iters_per_epoch`,
    `accum_grad_iters`, `warmup_share` and `max_steps`."""

    def __init__(
        self,
        optimizer: Any,
        max_epoch: int,
        min_lr: float,
        init_lr: float,
        warmup_steps: int = 0,
        warmup_start_lr: float = -1,
        *,
        iters_per_epoch: int,
        accum_grad_iters: int = 1,
        warmup_share: float | None = None,
        max_steps: int | None = None,
        **_unused: Any,  # LAVIS passes decay_rate to every scheduler
    ) -> None:
        self.optimizer = optimizer
        self.clock = UpdateClock(iters_per_epoch, accum_grad_iters, max_epoch, max_steps)
        self.init_lr, self.min_lr = init_lr, min_lr
        self.warmup_start_lr = warmup_start_lr if warmup_start_lr >= 0 else init_lr
        self.warmup = warmup_updates(self.clock.total_updates, warmup_steps, warmup_share)

    def lr_at(self, update: int) -> float:
        """The rate of 0-based optimizer update `update` (set on the optimizer by `step`)."""
        self.set(update)
        return float(self.optimizer.param_groups[0]["lr"])

    def set(self, update: int) -> None:
        if update < self.warmup:
            warmup_lr_schedule(self.optimizer, update, self.warmup, self.warmup_start_lr,
                               self.init_lr)  # fmt: skip
            return
        decay = max(1, self.clock.total_updates - self.warmup)
        cosine_lr_schedule(self.optimizer, min(update - self.warmup, decay), decay,
                           self.init_lr, self.min_lr)  # fmt: skip

    def step(self, cur_epoch: int, cur_step: int) -> None:
        self.set(self.clock.update_index(cur_epoch, cur_step))


def step_scheduler(settings: Any, optimizer: Any, clock: UpdateClock) -> WarmupCosineStepScheduler:
    """The scheduler of a run's `RunSettings` (init_lr, min_lr, warmup_lr, warmup_steps,
    warmup_share) over `clock` (the train loader's length, accumulation, epochs, max_steps)."""
    return WarmupCosineStepScheduler(
        optimizer,
        clock.max_epoch,
        settings.min_lr,
        settings.init_lr,
        settings.warmup_steps,
        settings.warmup_lr,
        iters_per_epoch=clock.iters_per_epoch,
        accum_grad_iters=clock.accum_grad_iters,
        warmup_share=settings.warmup_share,
        max_steps=clock.max_steps,
    )
