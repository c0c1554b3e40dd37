"""Training checkpoints that resume exactly, and their safe loading.

LAVIS's runner drops parameters with `requires_grad=False` when it saves, which loses the
momentum encoders (method.md: the teacher and the ITC queue live in the model), so a strict
resume fails. Here a checkpoint holds the FULL model state dict (frozen parameters and
persistent buffers included), the optimizer, the AMP scaler, the epoch, the best validation
score so far, and the resolved config as a yaml string. Everything is a plain container of
tensors / numbers / strings, so it loads with `torch.load(..., weights_only=True)`.

All weights of the plugin load through `load_checkpoint` (a refused pickle is one clear error
naming the file) and `load_weights` (strict; every key left out or left at its initial value is
named in the log with the reason, e.g. a head that does not use the momentum encoders).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lavis_syncmask.common.disk import partial_path, write_error

FORMAT_VERSION = 1
#: Keys every training checkpoint written by :func:`save_checkpoint` has.
CHECKPOINT_KEYS = (
    "model",
    "optimizer",
    "scaler",
    "epoch",
    "config",
    "best_epoch",
    "best_agg_metric",
    "format_version",
    "resume",
)
#: `checkpoint_<epoch>.pth` (end of the epoch) or `checkpoint_<epoch>_iter<k>.pth` (k batches
#: of the epoch done); `checkpoint_best.pth` is not a numbered one and is never pruned.
NUMBERED = re.compile(r"^checkpoint_(\d+)(?:_iter(\d+))?\.pth$")
#: Partial files of atomic writes: `.<name>.<pid>[.<random>].tmp`.
PARTIAL = re.compile(r"^\..+\.(\d+)(?:\.\w+)?\.tmp$")

logger = logging.getLogger(__name__)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter (trainable or frozen) and persistent buffer, detached, on the CPU."""
    return {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any | None,
    epoch: int,
    config_yaml: str,
    best_epoch: int | None = None,
    best_agg_metric: float | None = None,
    resume: dict[str, Any] | None = None,
) -> Path:
    """Write a resumable checkpoint atomically (a crash mid-write never leaves a torn file);
    a full disk is a `NoSpaceError` naming the path (common/disk.py), not torch's bare error.

    `model` is the bare model (not the DDP wrapper), so keys carry no `module.` prefix.
    `resume` is the mid-epoch state (runner/resume.py `EpochProgress.state()`); None for a
    checkpoint taken at the end of `epoch`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": full_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "config": config_yaml,
        "best_epoch": best_epoch,
        "best_agg_metric": None if best_agg_metric is None else float(best_agg_metric),
        "format_version": FORMAT_VERSION,
        "resume": resume,
    }
    partial = partial_path(target)
    try:
        torch.save(payload, partial)
        os.replace(partial, target)
    except BaseException as error:
        # Named before the partial file goes: on a full disk, that file is what fills it.
        clear = write_error(target, error)
        partial.unlink(missing_ok=True)  # leave no partial file behind
        if clear is not None:
            raise clear from error
        raise
    logger.info("saved checkpoint of epoch %d to %s", epoch, target)
    return target


def checkpoint_name(epoch: int, iteration: int | None = None) -> str:
    """``checkpoint_3.pth`` (end of epoch 3) or ``checkpoint_3_iter500.pth`` (mid-epoch)."""
    return (
        f"checkpoint_{epoch}.pth"
        if iteration is None
        else f"checkpoint_{epoch}_iter{iteration}.pth"
    )


def prune_checkpoints(folder: str | os.PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the `keep_last` newest numbered checkpoints of `folder` (0: keep all);
    `checkpoint_best.pth` stays. Returns the deleted paths."""
    if keep_last <= 0:
        return []
    numbered = []
    for path in Path(folder).glob("checkpoint_*.pth"):
        match = NUMBERED.match(path.name)
        if match:
            # An epoch's end comes after every mid-epoch checkpoint of that epoch.
            iteration = float("inf") if match[2] is None else int(match[2])
            numbered.append(((int(match[1]), iteration), path))
    numbered.sort()
    doomed = [path for _, path in numbered[:-keep_last]]
    for path in doomed:
        path.unlink(missing_ok=True)
        logger.info("removed %s (run.keep_last=%d)", path, keep_last)
    return doomed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_partials(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete partial files of interrupted atomic writes in `folder` (left by a killed
    process); files of a live writer other than this process are kept."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        match = PARTIAL.match(path.name)
        if match and (int(match[1]) == os.getpid() or not _alive(int(match[1]))):
            path.unlink(missing_ok=True)
            removed.append(path)
            logger.warning("removed the stale partial file %s", path)
    return removed


def load_checkpoint(path: str | os.PathLike[str], what: str = "checkpoint") -> dict[str, Any]:
    """Read a checkpoint (or a bare state dict) with `weights_only=True`, onto the CPU.

    `what` names the config key the path came from, for the error messages. Every loading
    path of the plugin goes through here, so a refused pickle is always this ValueError.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"{what}: no checkpoint file at {source}")
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{what}: {source} holds objects other than tensors and plain containers, so it "
            f"cannot be loaded safely (weights_only=True): {error}"
        ) from error
    except (RuntimeError, EOFError) as error:  # truncated, empty or not a torch file
        raise ValueError(f"{what}: {source} is not a readable torch checkpoint: {error}") from error
    if not isinstance(loaded, dict):
        raise ValueError(f"{what}: {source} holds a {type(loaded).__name__}, not a dict")
    return loaded


def model_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model state dict of a training checkpoint, or the checkpoint if it is one itself."""
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint 'model' entry is a {type(state).__name__}, not a dict")
    return state


#: Why a checkpoint key is left out (or a model key may stay unloaded): key -> reason.
Reasons = Mapping[str, str]


@dataclass(frozen=True)
class LoadReport:
    """What a load did: keys loaded, checkpoint keys skipped (with why), model keys left at
    their initial values (with why)."""

    loaded: tuple[str, ...]
    skipped: Reasons
    kept_initial: Reasons


def load_weights(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    what: str,
    *,
    skip: Reasons | None = None,
    allow_missing: Reasons | None = None,
) -> LoadReport:
    """Load `state` into `model` strictly, except where told otherwise, and say so.

    `skip`: checkpoint keys left out on purpose, with the reason; `allow_missing`: model keys
    the checkpoint need not have (e.g. a new head), with the reason. Both are logged, one line
    per key. Any other missing or unexpected key, or a shape mismatch, raises a ValueError that
    names each key (never torch's bare RuntimeError).
    """
    skip, allow_missing = dict(skip or {}), dict(allow_missing or {})
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if k not in skip}
    # A skipped key the model also has keeps the model's value: not "missing".
    missing = sorted(k for k in own if k not in state and k not in allow_missing)
    unexpected = sorted(k for k in kept if k not in own)
    shapes = sorted(
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in kept.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        raise ValueError(
            f"{what}: checkpoint does not match {type(model).__name__}: missing {missing}, "
            f"unexpected {unexpected}, shape mismatch {shapes}"
        )
    model.load_state_dict(kept, strict=False)
    for key, why in sorted(skip.items()):
        if key in state:
            logger.info("%s: skipped %s (%s)", what, key, why)
    initial = {k: why for k, why in allow_missing.items() if k in own and k not in kept}
    for key, why in sorted(initial.items()):
        logger.info("%s: %s keeps its initial value (%s)", what, key, why)
    skipped = {k: why for k, why in skip.items() if k in state}
    return LoadReport(tuple(sorted(kept)), skipped, initial)


def load_model_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    what: str = "checkpoint",
    *,
    skip: Callable[[Mapping[str, torch.Tensor]], Reasons] | None = None,
) -> dict[str, Any]:
    """Load a checkpoint's model weights into `model` strictly, except the keys `skip(state)`
    names (see :func:`load_weights`); returns the checkpoint."""
    checkpoint = load_checkpoint(path, what)
    state = model_state(checkpoint)
    load_weights(model, state, f"{what} {path}", skip=skip(state) if skip else None)
    return checkpoint


def restore_training_state(
    checkpoint: dict[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any | None,
    what: str = "run.resume_ckpt_path",
) -> int:
    """Put model, optimizer and scaler back as saved; returns the epoch to start from."""
    missing = [key for key in ("model", "optimizer", "epoch") if key not in checkpoint]
    if missing:
        raise ValueError(
            f"{what}: not a training checkpoint (missing {missing}); "
            "use model.checkpoint / --checkpoint to load bare weights"
        )
    load_weights(model, model_state(checkpoint), what)
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scaler is not None and checkpoint.get("scaler") is not None:
        scaler.load_state_dict(checkpoint["scaler"])
    return int(checkpoint["epoch"]) + 1
