"""Where a run's model lives: `run.device` resolved to a torch device (one GPU per rank under
torchrun), and the model moved there and wrapped in DDP when the run is distributed."""

from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel

from lavis_syncmask.common.precision import enable_tf32


def resolve_device(name: str, distributed: bool, local_gpu: int) -> torch.device:
    """`name` (`cpu`, `cuda`, `cuda:1`) as a device; a bare `cuda` under torchrun is this
    rank's GPU. TF32 matmuls are enabled on CUDA, as LAVIS's runner does."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run.device={device} but CUDA is not available")
    if device.type == "cuda" and device.index is None and distributed:
        device = torch.device("cuda", local_gpu)
    if device.type == "cuda":
        enable_tf32()
    return device


def place_model(
    model: torch.nn.Module, device: torch.device, distributed: bool, find_unused: bool
) -> torch.nn.Module:
    """`model` on `device`, DDP-wrapped when distributed. DDP takes `device_ids` only on
    CUDA: LAVIS passes them on a CPU too, which DDP refuses (lavis-notes.md)."""
    model = model.to(device)
    if not distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused)
