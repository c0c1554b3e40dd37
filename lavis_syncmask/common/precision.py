"""Mixed precision for training (`run.amp`, parsed by `RunSettings`) and the fp32 islands inside it.

`run.amp` is `bf16` (autocast to bfloat16; no gradient scaler: bf16 has fp32's exponent range,
so gradients do not underflow), `fp16` (autocast to float16 with a `GradScaler`) or false (fp32).
On current GPUs (A100 / H100 / H200) bf16 is the right choice; fp16 is kept for older cards.

Under autocast, matmuls run in 16 bits. SyncMask chooses its masks by ranking teacher
attention scores, and 16-bit scores (8 bits of mantissa in bf16) tie and reorder, so the teacher
attention, the mask selection and the loss reductions run inside :func:`full_precision`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

#: An autocast dtype (None where autocast is off).
AmpMode = Literal["bf16", "fp16"]
#: What `run.amp` may hold once parsed: an autocast dtype, or False for fp32.
AmpSetting = Literal[AmpMode, False]
AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(mode: AmpMode | None, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to `mode`'s dtype on `device`, or a no-op context for fp32."""
    if mode is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[mode])


@contextlib.contextmanager
def full_precision(device: torch.device | str) -> Iterator[None]:
    """Turn autocast off on `device`'s type: operations inside run in their inputs' dtype, so
    callers cast their inputs with `.float()` where they need fp32."""
    device_type = torch.device(device).type
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def enable_tf32() -> None:
    """TF32 tensor cores for fp32 matmuls and convolutions on CUDA (what stays fp32 under
    autocast, and whole runs with `run.amp: false`): ~8x the fp32 rate on A100 / H100 for a
    10-bit mantissa, which training tolerates."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
