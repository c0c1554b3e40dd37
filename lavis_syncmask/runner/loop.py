"""The training loop of one epoch for `runner_syncmask` (the task still defines the step).

It replaces LAVIS's `BaseTask._train_inner_loop`, whose pitfalls break SyncMask runs:
- the loss is divided by `accum_grad_iters`, so accumulating k micro-batches gives the
  gradient of their mean, and a partial group at the end of an epoch is still applied
  (otherwise its gradients would leak into the next epoch, and a resumed run would differ);
- optional gradient-norm clipping (`run.max_grad_norm`), after unscaling under AMP;
- autocast (`run.amp`: bf16, or fp16 with the gradient scaler) only on CUDA; DDP gradient
  sync only on update steps;
- epoch statistics are averaged over ranks with a collective on the backend's device (LAVIS's
  MetricLogger makes a CUDA tensor), and a tqdm bar shows progress on the main process.
The per-step work stays in `task.train_step(model, samples)`, which returns the loss tensor.
The seeding helpers live here too: each epoch reseeds from (seed, rank, epoch) so that a
resumed epoch draws the same dropout / masking randomness as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from lavis_syncmask.common.distributed import all_reduce_mean, is_main_process
from lavis_syncmask.common.precision import AmpMode, autocast


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
) -> None:
    if settings.max_grad_norm is not None:
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip true gradients, not scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _forward_backward(
    task: Any,
    model: torch.nn.Module,
    samples: dict[str, Any],
    scaler: Any | None,
    settings: LoopSettings,
    sync: bool,
    device: torch.device,
) -> float:
    # Between updates DDP need not all-reduce gradients: they only accumulate locally.
    skip_sync = isinstance(model, DistributedDataParallel) and not sync
    with model.no_sync() if skip_sync else contextlib.nullcontext():
        with autocast(settings.amp, device):
            loss = task.train_step(model=model, samples=samples)
        if not torch.is_tensor(loss) or loss.dim() != 0:
            raise ValueError(f"{type(task).__name__}.train_step must return a scalar tensor")
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(
                f"non-finite training loss {value} (iteration {samples['iters']})"
            )
        scaled = loss / settings.accum_grad_iters
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
    return value


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
) -> dict[str, float]:
    """Run one epoch over `loader` (len(loader) batches); returns rank-averaged `loss`, the
    last `lr` and the number of `steps` (iterations) and `updates` (optimizer steps)."""
    iters = len(loader)
    if iters == 0:
        raise ValueError(
            f"epoch {epoch}: the train loader yields no batch (dataset smaller than "
            "batch_size_train x world size?)"
        )
    model.train()
    optimizer.zero_grad(set_to_none=True)
    batches = loader if hasattr(loader, "__next__") else iter(loader)
    progress = tqdm(
        range(iters), desc=f"train epoch {epoch}", disable=not is_main_process(), mininterval=2.0
    )
    loss_sum, updates = 0.0, 0
    for i in progress:
        samples = move_to_device(next(batches), device)
        samples.update({"epoch": epoch, "num_iters_per_epoch": iters, "iters": i})
        lr_scheduler.step(cur_epoch=epoch, cur_step=i)
        is_update = (i + 1) % settings.accum_grad_iters == 0 or i + 1 == iters
        loss_sum += _forward_backward(
            task, model, samples, scaler, settings, sync=is_update, device=device
        )
        if is_update:
            _apply_update(model, optimizer, scaler, settings)
            updates += 1
        if i % settings.log_freq == 0 or i + 1 == iters:
            progress.set_postfix(
                loss=f"{loss_sum / (i + 1):.4f}", lr=optimizer.param_groups[0]["lr"], refresh=False
            )
    progress.close()
    stats = all_reduce_mean({"loss": loss_sum / iters})
    stats.update(lr=float(optimizer.param_groups[0]["lr"]), steps=iters, updates=updates)
    return stats
