"""Training checkpoints that resume exactly, and their safe loading.

LAVIS's runner drops parameters with `requires_grad=False` when it saves, which loses the
momentum encoders (method.md: the teacher and the ITC queue live in the model), so a strict
resume fails. Here a checkpoint holds the FULL model state dict (frozen parameters and
persistent buffers included), the optimizer, the AMP scaler, the epoch, the best validation
score so far, and the resolved config as a yaml string. Everything is a plain container of
tensors / numbers / strings, so it loads with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
    """Write a resumable checkpoint atomically (a crash mid-write never leaves a torn file).

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
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)  # e.g. disk full: leave no partial file behind
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

    `what` names the config key the path came from, for the error messages.
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
    if not isinstance(loaded, dict):
        raise ValueError(f"{what}: {source} holds a {type(loaded).__name__}, not a dict")
    return loaded


def model_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model state dict of a training checkpoint, or the checkpoint if it is one itself."""
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint 'model' entry is a {type(state).__name__}, not a dict")
    return state


def load_model_weights(
    model: nn.Module, path: str | os.PathLike[str], what: str = "checkpoint"
) -> dict[str, Any]:
    """Load a checkpoint's model weights into `model` strictly; returns the checkpoint."""
    checkpoint = load_checkpoint(path, what)
    state = model_state(checkpoint)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{what}: {path} does not match the model: missing {sorted(result.missing_keys)}, "
            f"unexpected {sorted(result.unexpected_keys)}"
        )
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
    result = model.load_state_dict(model_state(checkpoint), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{what}: model state does not match: missing {sorted(result.missing_keys)}, "
            f"unexpected {sorted(result.unexpected_keys)}"
        )
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scaler is not None and checkpoint.get("scaler") is not None:
        scaler.load_state_dict(checkpoint["scaler"])
    return int(checkpoint["epoch"]) + 1
