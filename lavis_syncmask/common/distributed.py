"""Process-group setup and the few collectives the plugin needs, safe in a single process.

LAVIS's `init_distributed_mode` hard-codes NCCL and its helpers assume CUDA tensors; here the
backend follows the hardware (gloo on CPU, NCCL on GPU, overridable by `run.dist_backend`),
every helper is a no-op or identity when no process group exists, and collectives move their
tensors to the device the backend can handle. The process group is read from the variables
`torchrun` exports (RANK, WORLD_SIZE, LOCAL_RANK); without them the run is single-process.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist

Backend = Literal["nccl", "gloo"]
BACKENDS: tuple[str, ...] = ("nccl", "gloo")
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job; `distributed` is False for a single process."""

    distributed: bool
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None


def is_dist() -> bool:
    """True when a process group is initialised (even a group of one)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op in a single process."""
    if is_dist():
        dist.barrier()


def collective_device() -> torch.device:
    """The device collectives of the current backend accept (NCCL wants the rank's GPU)."""
    if is_dist() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def default_backend() -> Backend:
    return "nccl" if torch.cuda.is_available() else "gloo"


def _torchrun_env() -> tuple[int, int, int] | None:
    present = [name for name in _TORCHRUN_VARS if name in os.environ]
    if not present:
        return None
    if "RANK" not in present or "WORLD_SIZE" not in present:
        missing = sorted(set(("RANK", "WORLD_SIZE")) - set(present))
        raise ValueError(
            f"distributed environment is incomplete: {missing} unset while {present} are set "
            "(launch with torchrun, or unset them for a single process)"
        )
    rank = int(os.environ["RANK"])
    return rank, int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", rank))


def init_distributed(backend: str | None = None, timeout_minutes: float = 30.0) -> DistInfo:
    """Join the process group described by torchrun's environment variables.

    Single-process (nothing initialised) when RANK / WORLD_SIZE are absent. `backend=None`
    picks NCCL when CUDA is available, else gloo. Calling it again returns the existing group.
    """
    if is_dist():
        return DistInfo(True, get_rank(), get_world_size(), _local_rank(), dist.get_backend())
    env = _torchrun_env()
    if env is None:
        return DistInfo(distributed=False)
    rank, world_size, local_rank = env
    chosen = backend or default_backend()
    if chosen not in BACKENDS:
        raise ValueError(f"run.dist_backend={chosen!r} is not supported; choose one of {BACKENDS}")
    if chosen == "nccl":
        if not torch.cuda.is_available():
            raise ValueError("run.dist_backend='nccl' needs CUDA; use 'gloo' on a CPU machine")
        # Bind the rank to its GPU first, so NCCL and every `.cuda()` use the right card.
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend=chosen,
        init_method="env://",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(minutes=timeout_minutes),
        # Naming the GPU lets NCCL barriers use it instead of guessing device 0.
        device_id=torch.device("cuda", local_rank) if chosen == "nccl" else None,
    )
    logger.info("distributed init: rank %d / %d, backend %s", rank, world_size, chosen)
    return DistInfo(True, rank, world_size, local_rank, chosen)


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", get_rank()))


def usable_device(requested: str) -> str:
    """`requested` (`run.device`), or `cpu` with a warning when it names CUDA on a machine
    without it."""
    if requested.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("run.device=%s but CUDA is not available: running on cpu", requested)
        return "cpu"
    return requested


def cleanup() -> None:
    """Leave the process group (if any) so the interpreter exits cleanly."""
    if is_dist():
        dist.destroy_process_group()


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` from every rank along dim 0, without gradient (for queues).

    `(B, ...)` -> `(world_size * B, ...)`, rank order; the input itself in a single process.
    Every rank must pass the same shape.
    """
    if not is_dist() or get_world_size() == 1:
        return tensor
    device = collective_device()
    local = tensor.detach().to(device).contiguous()
    gathered = [torch.empty_like(local) for _ in range(get_world_size())]
    dist.all_gather(gathered, local)
    return torch.cat(gathered, dim=0).to(tensor.device)


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average scalars over ranks (every rank must pass the same keys); a copy in one process."""
    if not is_dist() or not values:
        return dict(values)
    keys = sorted(values)
    stacked = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    stacked = stacked.to(collective_device())
    dist.all_reduce(stacked)
    averaged = (stacked / get_world_size()).cpu().tolist()
    return dict(zip(keys, averaged))


def broadcast_tensor(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Rank `src`'s tensor on every rank (same shape and dtype everywhere); returns a new tensor
    on the input's device, or the input itself in a single process."""
    if not is_dist() or get_world_size() == 1:
        return tensor
    buffer = tensor.detach().to(collective_device()).clone()
    dist.broadcast(buffer, src=src)
    return buffer.to(tensor.device)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s picklable object on every rank; the object itself in a single process."""
    if not is_dist() or get_world_size() == 1:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src, device=collective_device())
    return holder[0]
