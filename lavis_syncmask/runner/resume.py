"""What a mid-epoch checkpoint must carry to replay the rest of an epoch exactly, and the
run keys that control checkpoint frequency, retention and bad-step tolerance (issue 9).

An epoch's batch order depends only on (seed, epoch) (runner/loaders.py), so resuming at
batch k only needs: the iteration k, the global RNG states at that point (dropout, masking),
the running loss sums of the epoch, the task's running means, and, when the batch sampler
re-embeds the catalogue (`run.sampler.refresh_every`), the embeddings it was refreshed with
(recomputing them from mid-epoch weights would change the batches). Model, optimizer and
scaler are in the checkpoint already (common/checkpoint.py). Everything here is plain lists,
numbers and tensors, so checkpoints still load with `weights_only=True`.

Which rows the skipped batches held also depends on the batch size, the number of processes,
the seed and the training set: a mid-epoch checkpoint records them (:func:`batch_identity`; the
rows as a count and a hash of their texts and product ids), and resuming with any of them
changed is an error naming it (:func:`identity_changes`, issue 20), since skipping k batches of
another epoch order skips rows never trained on. `run.resume_from_epoch_start` restarts the
checkpoint's epoch at its first batch instead.

Limit: with `num_workers > 0` the batches after a resume go to other worker processes than
in the uninterrupted run, so random augmentations drawn inside workers differ; the shipped
recipes' processors are deterministic (`blip_image_eval`, `syncmask_text`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Sampler

from lavis_syncmask.common.distributed import collective_device, get_world_size, is_dist


def capture_rng() -> dict[str, Any]:
    """The global RNG states (Python, NumPy, torch CPU and CUDA) as plain lists / tensors."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class EpochProgress:
    """Where an epoch stands: `iteration` batches done, their loss sum over the finite steps,
    optimizer `updates`, `skipped` non-finite steps (and how many of them `in_a_row`)."""

    epoch: int
    iteration: int = 0
    loss_sum: float = 0.0
    updates: int = 0
    skipped: int = 0
    in_a_row: int = 0
    rng: dict[str, Any] | None = None
    task: dict[str, Any] | None = None

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochProgress:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(state) - known)
        if unknown:
            raise ValueError(f"mid-epoch resume state has unknown keys {unknown}")
        return cls(**state)


def data_fingerprint(dataset: Any) -> dict[str, Any]:
    """`{"rows", "sha256"}` of a training set: its length, and a hash of every row's text and
    product id in order when its parts have `sampler_metadata()` (this plugin's datasets), else
    of the parts' class names and lengths only (`"rows_only": True`)."""
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    digest = hashlib.sha256()
    rows_only = not all(callable(getattr(part, "sampler_metadata", None)) for part in parts)
    for part in parts:
        digest.update(f"{type(part).__name__}:{len(part)}\n".encode())
        if not rows_only:
            meta = part.sampler_metadata()
            for text, product in zip(meta["texts"], meta["product_ids"], strict=True):
                digest.update(f"{product}\t{text}\n".encode())
    return {"rows": len(dataset), "sha256": digest.hexdigest(), "rows_only": rows_only}


def batch_identity(batch_size: int, seed: int, dataset: Any) -> dict[str, Any]:
    """What the batches of an epoch depend on besides (seed, epoch): recorded in a mid-epoch
    checkpoint and compared on resume (:func:`identity_changes`)."""
    return {
        "batch_size_train": int(batch_size),
        "world_size": get_world_size(),
        "seed": int(seed),
        "data": data_fingerprint(dataset),
    }


def _describe_data(data: dict[str, Any]) -> str:
    return f"training data of {data['rows']} rows (fingerprint {data['sha256'][:12]})"


def identity_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`"<what> the checkpoint had, this run has <what>"` for each difference."""
    changes = []
    for key in ("batch_size_train", "world_size", "seed"):
        if saved.get(key) != current[key]:
            changes.append(f"{key}={saved.get(key)}, this run has {current[key]}")
    if saved.get("data") != current["data"]:
        old = saved.get("data") or {"rows": "?", "sha256": "unknown"}
        changes.append(f"{_describe_data(old)}, this run has {_describe_data(current['data'])}")
    return changes


def gather_ranks(obj: Any) -> list[Any]:
    """`obj` of every rank, in rank order (`[obj]` in one process)."""
    if not is_dist():
        return [obj]
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is True on at least one (a signal may reach one rank)."""
    if not is_dist():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=collective_device())
    torch.distributed.all_reduce(value)
    return bool(value.item() > 0)


def task_state(task: Any) -> dict[str, Any] | None:
    """The task's running epoch state (e.g. the pretraining task's loss means), if it has one."""
    getter = getattr(task, "resume_state", None)
    return getter() if callable(getter) else None


def load_task_state(task: Any, state: dict[str, Any] | None) -> None:
    setter = getattr(task, "load_resume_state", None)
    if state is not None and callable(setter):
        setter(state)


class SkippableBatchSampler(Sampler[list[int]]):
    """A batch sampler whose next pass can start at batch k: the runner resumes mid-epoch by
    skipping batches in the sampler, without loading them. `len()` stays the full epoch."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self._skip = 0

    def skip_next(self, batches: int) -> None:
        """The next iteration starts after the first `batches` batches."""
        if not 0 <= batches <= len(self.inner):
            raise ValueError(f"cannot skip {batches} of {len(self.inner)} batches")
        self._skip = batches

    def set_epoch(self, epoch: int) -> None:
        owner = self.inner if hasattr(self.inner, "set_epoch") else self.inner.sampler
        owner.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self._skip = self._skip, 0
        for position, batch in enumerate(self.inner):
            if position >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.inner)
