"""The training loop of one epoch for `runner_syncmask` (the task still defines the step).

It replaces LAVIS's `BaseTask._train_inner_loop`, whose pitfalls break SyncMask runs:
- the loss is divided by `accum_grad_iters`, so accumulating k micro-batches gives the
  gradient of their mean, and a partial group at the end of an epoch is still applied
  (otherwise its gradients would leak into the next epoch, and a resumed run would differ);
- optional gradient-norm clipping (`run.max_grad_norm`), after unscaling under AMP;
- autocast (`run.amp`: bf16, or fp16 with the gradient scaler) only on CUDA; DDP gradient
  sync only on update steps;
- epoch statistics are averaged over ranks with a collective on the backend's device (LAVIS's
  MetricLogger makes a CUDA tensor), and a tqdm bar shows progress on the main process;
- a non-finite loss (on any rank) skips that step's backward, and non-finite gradients skip
  the optimizer step; either is counted (`skipped_steps`) and undoes what the forward passes
  of the update changed in buffers and momentum encoders (runner/step_guard.py), so the live
  state stays finite; the runner stops the run after `run.max_bad_steps` of them in a row;
- an epoch can start at a given batch (mid-epoch resume) and stop after any step (the
  runner's `after_step` hook: periodic and signal checkpoints).
The per-step work stays in `task.train_step(model, samples)`, which returns the loss tensor.
The seeding helpers live here too: each epoch reseeds from (seed, rank, epoch) so that a
resumed epoch draws the same dropout / masking randomness as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.profiler import record_function
from tqdm.auto import tqdm

from lavis_syncmask.common.distributed import (
    all_reduce_mean,
    collective_device,
    is_dist,
    is_main_process,
)
from lavis_syncmask.common.precision import AmpMode, autocast
from lavis_syncmask.runner.resume import EpochProgress, restore_rng
from lavis_syncmask.runner.step_guard import ForwardStateGuard, gradients_finite

logger = logging.getLogger(__name__)
#: Profiler labels of a step's phases (`torch.profiler.record_function`), as
#: `benchmarks/profile_train_step.py` reads them.
STEP_LABELS = {phase: f"step::{phase}" for phase in ("forward", "backward", "optimizer")}


@dataclass(frozen=True)
class LoopSettings:
    """How updates are made: `accum_grad_iters` micro-batches per optimizer step, clipping
    to `max_grad_norm` (None: no clipping), autocast to `amp` (bf16 | fp16; None: fp32)."""

    accum_grad_iters: int = 1
    max_grad_norm: float | None = None
    amp: AmpMode | None = None
    log_freq: int = 50

    @property
    def use_amp(self) -> bool:
        return self.amp is not None

    def __post_init__(self) -> None:
        if self.accum_grad_iters < 1:
            raise ValueError(f"run.accum_grad_iters must be >= 1, got {self.accum_grad_iters}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"run.max_grad_norm must be > 0 or null, got {self.max_grad_norm}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    """A seed that depends only on (seed, rank, epoch): what makes a resumed epoch replay."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


def move_to_device(sample: Any, device: torch.device) -> Any:
    """A copy of a (nested dict / list / tuple) batch with every tensor on `device`."""
    if torch.is_tensor(sample):
        return sample.to(device, non_blocking=device.type == "cuda")
    if isinstance(sample, dict):
        return {key: move_to_device(value, device) for key, value in sample.items()}
    if isinstance(sample, (list, tuple)):
        return type(sample)(move_to_device(value, device) for value in sample)
    return sample


def _apply_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any | None,
    settings: LoopSettings,
) -> bool:
    """One optimizer step; False when non-finite gradients made it skip the step (fp16's
    scaler skips such steps by itself and backs off its scale: not counted as bad)."""
    with record_function(STEP_LABELS["optimizer"]):
        return _clip_and_step(model, optimizer, scaler, settings)


def _clip_and_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any | None,
    settings: LoopSettings,
) -> bool:
    if scaler is not None:
        if settings.max_grad_norm is not None:
            scaler.unscale_(optimizer)  # clip true gradients, not scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        finite = True
    else:
        finite = gradients_finite(model, settings.max_grad_norm)
        if finite:  # a step on NaN / inf gradients would make every weight non-finite
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return finite


def _all_ranks_finite(value: float) -> bool:
    """Whether the loss is finite on every rank: under DDP one rank cannot skip a backward
    the others run (their gradient all-reduce would wait for it forever)."""
    finite = math.isfinite(value)
    if is_dist():
        flag = torch.tensor([0.0 if finite else 1.0], device=collective_device())
        torch.distributed.all_reduce(flag)
        finite = bool(flag.item() == 0)
    return finite


def _forward_backward(
    task: Any,
    model: torch.nn.Module,
    samples: dict[str, Any],
    scaler: Any | None,
    settings: LoopSettings,
    sync: bool,
    device: torch.device,
) -> float | None:
    """The step's loss value after its backward, or None when a non-finite loss (on any
    rank) made it skip the backward, so its gradients never reach the weights."""
    # Between updates DDP need not all-reduce gradients: they only accumulate locally.
    skip_sync = isinstance(model, DistributedDataParallel) and not sync
    with model.no_sync() if skip_sync else contextlib.nullcontext():
        with autocast(settings.amp, device), record_function(STEP_LABELS["forward"]):
            loss = task.train_step(model=model, samples=samples)
        if not torch.is_tensor(loss) or loss.dim() != 0:
            raise ValueError(f"{type(task).__name__}.train_step must return a scalar tensor")
        value = float(loss.detach())
        if not _all_ranks_finite(value):
            return None
        scaled = loss / settings.accum_grad_iters
        with record_function(STEP_LABELS["backward"]):
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
    return value


def one_update(
    task: Any,
    model: torch.nn.Module,
    samples: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    settings: LoopSettings,
    *,
    scaler: Any | None = None,
    guard: ForwardStateGuard | None = None,
) -> float | None:
    """One optimizer update on one batch, made by the same parts as `train_one_epoch`'s: the
    task's forward under autocast, the backward, clipping, the non-finite checks and the step
    (with `guard`, the bad-step guard's save and restore too). It is the step that the
    micro-benchmarks time, profile and measure, so none of them keeps a step of its own.
    Returns the loss, or None when a non-finite loss or gradient skipped the update.

    Example:
        >>> loss = one_update(BaseTask(), model, batch, optimizer, LoopSettings())  # doctest: +SKIP
    """
    device = next(model.parameters()).device
    if guard is not None:
        guard.save()
    value = _forward_backward(task, model, samples, scaler, settings, sync=True, device=device)
    updated = value is not None and _apply_update(model, optimizer, scaler, settings)
    optimizer.zero_grad(set_to_none=True)
    if not updated and guard is not None:
        guard.restore()
    return value if updated else None


def train_one_epoch(
    *,
    task: Any,
    model: torch.nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    scaler: Any | None,
    device: torch.device,
    epoch: int,
    settings: LoopSettings,
    progress: EpochProgress | None = None,
    after_step: Callable[[EpochProgress, bool], bool] | None = None,
) -> dict[str, float]:
    """Run one epoch over `loader` (len(loader) batches); returns rank-averaged `loss` (over
    the finite steps), the last `lr`, the number of `steps` (iterations), `updates`
    (optimizer steps) and `skipped_steps` (non-finite losses, whose update is skipped).

    `progress` resumes an epoch at `progress.iteration` (the loader must already skip those
    batches) with its RNG states; `after_step(progress, is_update)` runs after every
    iteration and returns True to stop the epoch there (then `stopped` is in the stats).
    """
    iters = len(loader)
    if iters == 0:
        raise ValueError(
            f"epoch {epoch}: the train loader yields no batch (dataset smaller than "
            "batch_size_train x world size?)"
        )
    state = progress if progress is not None else EpochProgress(epoch=epoch)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    batches = loader if hasattr(loader, "__next__") else iter(loader)
    if state.rng is not None:  # after iter(): workers were seeded as in the first run
        restore_rng(state.rng)
    bar = tqdm(
        range(state.iteration, iters),
        desc=f"train epoch {epoch}",
        disable=not is_main_process(),
        mininterval=2.0,
    )
    stopped, group_has_grads = False, False
    guard, first = ForwardStateGuard(model), state.iteration
    for i in bar:
        samples = move_to_device(next(batches), device)
        # `starts_update`: the first micro-batch after an optimizer step. A model that keeps
        # a schedule (EMA teacher, mask warm-up) advances it only then, so that
        # accum_grad_iters does not change the schedule.
        samples.update(
            {
                "epoch": epoch,
                "num_iters_per_epoch": iters,
                "iters": i,
                "starts_update": i % settings.accum_grad_iters == 0,
            }
        )
        lr_scheduler.step(cur_epoch=epoch, cur_step=i)
        is_update = (i + 1) % settings.accum_grad_iters == 0 or i + 1 == iters
        if samples["starts_update"] or i == first:
            guard.save()  # what a bad step of this update will put back
        value = _forward_backward(
            task, model, samples, scaler, settings, sync=is_update, device=device
        )
        bad = None if value is not None else "non-finite loss"
        group_has_grads = group_has_grads or value is not None
        if is_update:
            if group_has_grads:
                if _apply_update(model, optimizer, scaler, settings):
                    state.updates += 1
                else:
                    bad = "non-finite gradients"
            optimizer.zero_grad(set_to_none=True)
            group_has_grads = False
        if bad is not None:
            guard.restore()  # undo this update's queue writes and teacher EMA steps
        _count(state, None if bad else value, epoch, i, bad)
        state.iteration = i + 1
        if i % settings.log_freq == 0 or i + 1 == iters:
            done = max(1, state.iteration - state.skipped)
            bar.set_postfix(
                loss=f"{state.loss_sum / done:.4f}", lr=optimizer.param_groups[0]["lr"],
                skipped=state.skipped, refresh=False,
            )  # fmt: skip
        if after_step is not None and after_step(state, is_update):
            stopped = True
            break
    bar.close()
    stats = all_reduce_mean({"loss": state.loss_sum / max(1, state.iteration - state.skipped)})
    stats.update(
        lr=float(optimizer.param_groups[0]["lr"]),
        steps=state.iteration,
        updates=state.updates,
        skipped_steps=state.skipped,
    )
    if stopped:
        stats["stopped"] = True
    return stats


def _count(
    state: EpochProgress, value: float | None, epoch: int, step: int, why: str | None
) -> None:
    """Add a step's loss to the epoch sums, or count it as a bad step (`why`: what was not
    finite)."""
    if value is None:
        state.skipped += 1
        state.in_a_row += 1
        logger.warning(
            "epoch %d iteration %d: %s, update skipped (%d skipped this epoch, %d in a row)",
            epoch, step, why, state.skipped, state.in_a_row,
        )  # fmt: skip
    else:
        state.loss_sum += value
        state.in_a_row = 0
