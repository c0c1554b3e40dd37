"""A tiny LAVIS plugin for the runner and launcher tests: model, dataset builder and task
registered as `syncmask_toy_*`, plus a fake batch sampler with SemiHardBatchSampler's interface.

The model mimics what makes SyncMask checkpoints tricky: a momentum encoder whose parameters
have `requires_grad=False`, a feature queue filled through `concat_all_gather`, dropout (so
the RNG matters) and a `sampler_text_embeddings` method. Launch it with
`python -m lavis_syncmask.train --import toy_plugin --cfg-path tests/toy_configs/toy_run.yaml`
with `tests/` on PYTHONPATH.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder
from lavis.models.base_model import BaseModel
from lavis.tasks.base_task import BaseTask
from torch import nn
from torch.utils.data import Dataset

from lavis_syncmask.common.distributed import concat_all_gather, get_rank, get_world_size

CONFIG_DIR = Path(__file__).resolve().parent / "toy_configs"
RUN_CONFIG = CONFIG_DIR / "toy_run.yaml"


def _register(kind: str, name: str) -> Callable[[type], type]:
    """Register once, even if this file is imported under two module names."""
    table = {"model": "model_name_mapping", "builder": "builder_name_mapping"}.get(
        kind, f"{kind}_name_mapping"
    )

    def wrap(cls: type) -> type:
        if name not in registry.mapping[table]:
            getattr(registry, f"register_{kind}")(name)(cls)
        return cls

    return wrap


class ToyDataset(Dataset):
    """`n` feature vectors `(dim,)` with a label that a linear layer can learn."""

    def __init__(self, n: int, dim: int, num_classes: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=gen)
        teacher = torch.randn(dim, num_classes, generator=torch.Generator().manual_seed(99))
        self.y = (self.x @ teacher).argmax(dim=1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"x": self.x[index], "y": self.y[index], "index": index}

    def collater(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {
            "x": torch.stack([s["x"] for s in samples]),
            "y": torch.stack([s["y"] for s in samples]),
            "index": torch.tensor([s["index"] for s in samples]),
        }

    def sampler_metadata(self) -> dict[str, list]:
        labels = self.y.tolist()
        return {
            "texts": [f"item {i} of class {c}" for i, c in enumerate(labels)],
            "product_ids": [i // 2 for i in range(len(labels))],
            "subcategories": [f"sub{c}" for c in labels],
            "categories": ["all" for _ in labels],
        }


@_register("builder", "syncmask_toy_data")
class ToyBuilder(BaseDatasetBuilder):
    DATASET_CONFIG_DICT = {"default": str(CONFIG_DIR / "toy_data_default.yaml")}

    def build_datasets(self) -> dict[str, ToyDataset]:
        c = self.config
        dims = (int(c.dim), int(c.num_classes))
        return {
            "train": ToyDataset(int(c.num_train), *dims, seed=int(c.seed)),
            "val": ToyDataset(int(c.num_eval), *dims, seed=int(c.seed) + 1),
            "test": ToyDataset(int(c.num_eval), *dims, seed=int(c.seed) + 2),
        }


@_register("model", "syncmask_toy_model")
class ToyModel(BaseModel):
    PRETRAINED_MODEL_CONFIG_DICT = {"default": str(CONFIG_DIR / "toy_model_default.yaml")}

    def __init__(
        self, dim: int = 6, hidden: int = 12, num_classes: int = 3, queue_size: int = 32,
        momentum: float = 0.9, dropout: float = 0.2,
    ) -> None:  # fmt: skip
        super().__init__()
        self.encoder = nn.Linear(dim, hidden)
        self.head = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.encoder_m = copy.deepcopy(self.encoder).requires_grad_(False)
        self.momentum = momentum
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, hidden), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("gather_factor", torch.zeros((), dtype=torch.long))
        self.embedding_calls = 0

    @classmethod
    def from_config(cls, cfg: Any) -> ToyModel:
        keys = ("dim", "hidden", "num_classes", "queue_size", "momentum", "dropout")
        return cls(**{k: cfg[k] for k in keys if k in cfg})

    def forward(self, samples: dict[str, Any]) -> dict[str, torch.Tensor]:
        features = self.dropout(torch.relu(self.encoder(samples["x"])))
        loss = F.cross_entropy(self.head(features), samples["y"])
        # A copy: the queue is overwritten in place before backward runs.
        sim = F.normalize(features, dim=1) @ self.queue.clone().t()
        loss = loss + 0.1 * torch.logsumexp(sim / 0.5, dim=1).mean()
        if self.training:
            self._momentum_update(samples["x"])
        return {"loss": loss}

    @torch.no_grad()
    def _momentum_update(self, x: torch.Tensor) -> None:
        for p, p_m in zip(self.encoder.parameters(), self.encoder_m.parameters()):
            p_m.mul_(self.momentum).add_(p.detach(), alpha=1 - self.momentum)
        keys = concat_all_gather(F.normalize(self.encoder_m(x), dim=1))
        self.gather_factor.fill_(keys.shape[0] // x.shape[0])
        rows = (self.queue_ptr + torch.arange(keys.shape[0])) % self.queue.shape[0]
        self.queue[rows] = keys
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % self.queue.shape[0])

    @torch.no_grad()
    def sampler_text_embeddings(self, texts: list[str]) -> torch.Tensor:
        """`(N, 4)` deterministic embeddings of the texts (their character statistics)."""
        self.embedding_calls += 1
        rows = [[len(t), sum(map(ord, t)) % 97, t.count("1"), t.count(" ")] for t in texts]
        return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def parameter_checksum(state: dict[str, torch.Tensor]) -> float:
    """A number that changes whenever any floating-point entry of a state dict changes."""
    return float(sum(v.double().sum() * (i + 1) for i, v in enumerate(
        state[k] for k in sorted(state) if state[k].is_floating_point()
    )))  # fmt: skip


@_register("task", "syncmask_toy_task")
class ToyTask(BaseTask):
    """Classification accuracy as `agg_metrics`; records its hooks' calls for the tests."""

    #: (epoch, iteration) pairs whose loss is made NaN (the non-finite-loss tests).
    nan_steps: frozenset[tuple[int, int]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.started_epochs: list[int] = []
        self.checksum: float | None = None

    def train_step(self, model: Any, samples: dict[str, Any]) -> torch.Tensor:
        # TOY_STEP_SLEEP slows steps down so a test can signal a subprocess mid-epoch.
        time.sleep(float(os.environ.get("TOY_STEP_SLEEP", "0")))
        loss = model(samples)["loss"]
        if (samples["epoch"], samples["iters"]) in self.nan_steps:
            loss = loss * float("nan")
        return loss

    @classmethod
    def setup_task(cls, **kwargs: Any) -> ToyTask:
        return cls()

    def before_train_epoch(self, epoch: int) -> None:
        self.started_epochs.append(epoch)

    def after_train_epoch(self, epoch: int) -> dict[str, float]:
        return {"toy_epoch": float(epoch)}

    def before_evaluation(self, model: Any, dataset: Any, **kwargs: Any) -> None:
        self.checksum = parameter_checksum(model.state_dict())

    def valid_step(self, model: Any, samples: dict[str, Any]) -> list[dict[str, Any]]:
        predicted = model.head(torch.relu(model.encoder(samples["x"]))).argmax(dim=1)
        correct = (predicted == samples["y"]).tolist()
        return [{"index": int(i), "correct": bool(c)} for i, c in zip(samples["index"], correct)]

    def after_evaluation(self, val_result: list, split_name: str, epoch: Any, **kwargs: Any):
        accuracy = sum(r["correct"] for r in val_result) / max(len(val_result), 1)
        result = {"agg_metrics": accuracy, "acc": accuracy, "checksum": self.checksum,
                  "world_size": get_world_size()}  # fmt: skip
        out = Path(registry.get_path("output_dir"))
        # Every rank writes its own copy: DDP replicas must hold identical weights.
        payload = json.dumps({"epoch": str(epoch), **result})
        (out / f"eval_{split_name}_rank{get_rank()}.json").write_text(payload)
        if get_rank() == 0:
            (out / f"eval_{split_name}.json").write_text(payload)
        return result


class FakeBatchSampler:
    """SemiHardBatchSampler's interface: fixed-size batches of indices, reshuffled per epoch
    from (seed, epoch), sharded over replicas; records every call for the tests."""

    def __init__(
        self, texts: list[str], product_ids: list, groups: list, categories: list,
        batch_size: int, *, mode: str, group_size: int = 4, sim_lower: float = 0.2,
        sim_upper: float = 0.9, seed: int = 0, num_replicas: int | None = None,
        rank: int | None = None, drop_last: bool = True, refresh_every: int = 0,
    ) -> None:  # fmt: skip
        self.n, self.batch_size, self.mode, self.seed = len(texts), batch_size, mode, seed
        self.num_replicas, self.rank = num_replicas or 1, rank or 0
        self.group_size, self.refresh_every = group_size, refresh_every
        self.epoch, self.epochs_set, self.refreshed, self.batches_yielded = 0, [], [], 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.epochs_set.append(epoch)

    def needs_refresh(self, epoch: int) -> bool:
        return self.refresh_every > 0 and epoch % self.refresh_every == 0

    def refresh_similarity(self, embeddings: torch.Tensor) -> None:
        self.refreshed.append((self.epoch, tuple(embeddings.shape)))

    def epoch_statistics(self) -> dict[str, float]:
        return {"epoch": float(self.epoch), "batches": float(len(self))}

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(
            self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)
        )
        mine = order[self.rank :: self.num_replicas].tolist()
        for b in range(len(self)):
            self.batches_yielded += 1
            yield mine[b * self.batch_size : (b + 1) * self.batch_size]
