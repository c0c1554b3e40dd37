"""Data loaders for `runner_syncmask`: deterministic per-epoch order, CPU-safe, and the hook
for the semi-hard batch sampler (method.md, batch construction; `lavis_syncmask.sampling.batch_sampler`).

Differences from LAVIS's `RunnerBase.create_loaders`, and why:
- the train split always goes through a `DistributedSampler` (one replica in a single process)
  whose `set_epoch` the runner calls, so the order of an epoch depends only on (seed, epoch)
  and a resumed run sees the same batches as an uninterrupted one;
- `PrefetchLoader` (which creates a CUDA stream) only wraps loaders on a CUDA device;
- `run.batch_sampler` swaps the train sampler for a batch sampler that shards and reshuffles
  by itself, fed by the dataset's `sampler_metadata()`;
- the train batch sampler can skip the first batches of an epoch (mid-epoch resume), and
  workers ignore SIGTERM / SIGINT so the main process can stop cleanly (runner/signals.py).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

import torch
from lavis.datasets.datasets.dataloader_utils import PrefetchLoader
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
)

from lavis_syncmask.common.distributed import broadcast_tensor, get_rank, get_world_size
from lavis_syncmask.runner.resume import SkippableBatchSampler
from lavis_syncmask.sampling.settings import SamplerSettings

METADATA_KEYS: tuple[str, ...] = ("texts", "product_ids", "subcategories", "categories")

logger = logging.getLogger(__name__)


def sampler_metadata(dataset: Dataset) -> dict[str, list]:
    """The dataset's `sampler_metadata()`, concatenated over the parts of a ConcatDataset.

    Each list has one entry per dataset index (texts, product ids, subcategories, categories).
    """
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    merged: dict[str, list] = {key: [] for key in METADATA_KEYS}
    for part in parts:
        getter = getattr(part, "sampler_metadata", None)
        if getter is None:
            raise ValueError(
                f"run.batch_sampler needs a train dataset with sampler_metadata(); "
                f"{type(part).__name__} has none"
            )
        meta = getter()
        missing = [key for key in METADATA_KEYS if key not in meta]
        if missing:
            raise ValueError(f"{type(part).__name__}.sampler_metadata() lacks {missing}")
        for key in METADATA_KEYS:
            values = list(meta[key])
            if len(values) != len(part):
                raise ValueError(
                    f"{type(part).__name__}.sampler_metadata()[{key!r}] has {len(values)} "
                    f"entries for {len(part)} samples"
                )
            merged[key].extend(values)
    return merged


def build_batch_sampler(
    sampler_cls: Callable[..., Any],
    meta: dict[str, list],
    settings: SamplerSettings,
    *,
    batch_size: int,
    seed: int,
    num_replicas: int,
    rank: int,
) -> Any:
    """Construct `sampler_cls` (SemiHardBatchSampler's signature) over `sampler_metadata(...)`.

    `batch_size` is per rank, as LAVIS's `batch_size_train`.
    """
    return sampler_cls(
        meta["texts"],
        meta["product_ids"],
        meta["subcategories"],
        meta["categories"],
        batch_size,
        mode=settings.mode,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
        drop_last=True,
        **settings.knobs,
    )


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM / SIGINT. Schedulers (and Ctrl-C) signal the whole
    process group, and a worker killed by it makes the main process fail at its next batch,
    before it can write the checkpoint it owes; the main process shuts its workers down."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    is_train: bool,
    num_workers: int,
    collate_fn: Callable | None,
    on_cuda: bool,
    num_replicas: int,
    rank: int,
    seed: int,
    distributed_eval: bool,
    batch_sampler: Any | None = None,
) -> Any:
    """One split's loader. Train: sharded, shuffled per (seed, epoch), last partial batch
    dropped; eval: in order, sharded only when `distributed_eval` and several ranks."""
    if isinstance(dataset, IterableDataset):
        if is_train:
            raise ValueError(
                f"runner_syncmask trains on map-style datasets; {type(dataset).__name__} is "
                "iterable (use LAVIS's runner_iter for webdataset pipelines)"
            )
        return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    common = {"num_workers": num_workers, "collate_fn": collate_fn, "pin_memory": on_cuda}
    if num_workers > 0:
        common["worker_init_fn"] = ignore_stop_signals
    if is_train:
        if batch_sampler is None:
            sampler = DistributedSampler(
                dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed
            )
            # What DataLoader(batch_size=..., sampler=..., drop_last=True) builds inside.
            batch_sampler = BatchSampler(sampler, batch_size, drop_last=True)
        # Skippable, so a mid-epoch resume starts at its batch without loading the others.
        loader = DataLoader(dataset, batch_sampler=SkippableBatchSampler(batch_sampler), **common)
    else:
        sampler = None
        if distributed_eval and num_replicas > 1:
            sampler = DistributedSampler(
                dataset, num_replicas=num_replicas, rank=rank, shuffle=False
            )
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, **common)
    # PrefetchLoader overlaps host-to-GPU copies on a side CUDA stream: meaningless on a CPU.
    return PrefetchLoader(loader) if on_cuda else loader


def base_loader(loader: Any) -> Any:
    """The torch DataLoader inside a PrefetchLoader (or the loader itself)."""
    return loader.loader if isinstance(loader, PrefetchLoader) else loader


def skip_batches(loader: Any, batches: int) -> None:
    """Make the train loader's next pass start after its first `batches` batches."""
    inner = base_loader(loader).batch_sampler
    if not isinstance(inner, SkippableBatchSampler):
        raise TypeError(f"the train loader's batch sampler {type(inner).__name__} cannot skip")
    inner.skip_next(batches)


def set_loader_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader's batch sampler, else its sampler, which epoch starts (if they care)."""
    inner = base_loader(loader)
    for owner in (getattr(inner, "batch_sampler", None), getattr(inner, "sampler", None)):
        if owner is not None and hasattr(owner, "set_epoch"):
            owner.set_epoch(epoch)
            return


@torch.no_grad()
def refresh_sampler_similarity(
    sampler: Any, model: Any, epoch: int, texts: list[str]
) -> torch.Tensor | None:
    """Re-embed the catalogue's texts with the current model when the sampler asks for it.

    The embeddings `(N, D)` come from `model.sampler_text_embeddings(texts)` and are broadcast
    from rank 0 so every rank's sampler shards the same batches. Returns them (on the CPU),
    or None when nothing was refreshed.
    """
    if not sampler.needs_refresh(epoch):
        return None
    embed = getattr(model, "sampler_text_embeddings", None)
    if embed is None:
        logger.warning(
            "batch sampler asks for a similarity refresh at epoch %d but %s has no "
            "sampler_text_embeddings(texts); keeping the old similarities",
            epoch,
            type(model).__name__,
        )
        return None
    was_training = model.training
    model.eval()
    try:
        embeddings = embed(texts)
    finally:
        model.train(was_training)
    embeddings = broadcast_tensor(embeddings.detach().float()).cpu()
    sampler.refresh_similarity(embeddings)
    logger.info(
        "epoch %d: refreshed batch-sampler similarities (%s)", epoch, tuple(embeddings.shape)
    )
    return embeddings


def build_loaders(
    datasets: Sequence[Any],
    batch_sizes: Sequence[int],
    is_trains: Sequence[bool],
    collate_fns: Sequence[Callable | None],
    *,
    num_workers: int,
    on_cuda: bool,
    seed: int,
    distributed_eval: bool,
    train_batch_sampler: Callable[[Dataset, int], Any] | None = None,
) -> list:
    """LAVIS's `create_loaders` contract: one loader per split, for this rank; training splits
    take their batches from `train_batch_sampler(dataset, batch_size)` when it is given."""
    loaders = []
    for dataset, batch_size, is_train, collate_fn in zip(
        datasets, batch_sizes, is_trains, collate_fns
    ):
        if isinstance(dataset, (list, tuple)):
            raise ValueError(
                "runner_syncmask does not mix map-style and webdataset training sets; "
                f"got {[type(d).__name__ for d in dataset]}"
            )
        batch_sampler = None
        if is_train and train_batch_sampler is not None:
            batch_sampler = train_batch_sampler(dataset, int(batch_size))
        loaders.append(
            build_loader(
                dataset,
                batch_size=int(batch_size),
                is_train=is_train,
                num_workers=num_workers,
                collate_fn=collate_fn,
                on_cuda=on_cuda,
                num_replicas=get_world_size(),
                rank=get_rank(),
                seed=seed,
                distributed_eval=distributed_eval,
                batch_sampler=batch_sampler,
            )
        )
    return loaders
