"""What the downstream tasks share: evaluation on the main process, provenance-rich
`metrics.json` / `evaluate.txt` output, and LAVIS's `agg_metrics` for best-checkpoint choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lavis.common.registry import registry
from lavis.tasks.base_task import BaseTask
from omegaconf import OmegaConf

from lavis_syncmask.common.distributed import is_main_process
from lavis_syncmask.evaluation import write_metrics
from lavis_syncmask.models.config import initial_weights
from lavis_syncmask.runner.settings import RunSettings


def unwrap(model: Any) -> Any:
    """The bare model inside DistributedDataParallel (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def output_dir(cfg: Any) -> Path:
    try:
        return Path(registry.get_path("output_dir"))
    except KeyError:
        return Path(RunSettings.of(cfg).output_dir).resolve()


def data_files(dataset: Any) -> list[str]:
    files = getattr(dataset, "data_files", None)
    return [str(f) for f in files] if files else []


class EvaluationTask(BaseTask):
    """Base of the downstream tasks: subclasses implement `run_protocol(model, dataset)`
    returning `{"metrics": {...}, "seeds": [...], optional "gallery": str}`."""

    task_name = "evaluation"
    agg_metric = "r_mean"

    def __init__(self, cfg: Any, protocol: str | None = None, gallery: str | None = None):
        super().__init__()
        self.cfg = cfg
        self.settings = RunSettings.of(cfg)
        self.protocol = protocol
        self.gallery = gallery

    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        raise NotImplementedError

    def train_step(self, model: Any, samples: dict[str, Any]) -> torch.Tensor:
        return model(samples).loss  # fine-tuning: the model's own loss

    def valid_step(self, model: Any, samples: dict[str, Any]) -> list:
        return []

    def every_rank_evaluates(self) -> bool:
        """Whether `run_protocol` runs on every rank (a sharded protocol) or on the main one."""
        return False

    @torch.no_grad()
    def evaluation(self, model: Any, data_loader: Any, cuda_enabled: bool = True) -> dict:
        result: dict[str, Any] = {}
        if self.every_rank_evaluates() or is_main_process():
            was_training = unwrap(model).training
            unwrap(model).eval()
            outcome = self.run_protocol(model, data_loader.dataset)
            unwrap(model).train(was_training)
        if is_main_process():
            metrics = outcome["metrics"]
            result = dict(metrics)
            result["agg_metrics"] = float(metrics.get(self.agg_metric, 0.0))
            write_metrics(
                output_dir(self.cfg),
                metrics,
                task=self.task_name,
                protocol=self.protocol,
                gallery=outcome.get("gallery", self.gallery),
                seeds=outcome.get("seeds", []),
                checkpoint=self._checkpoint(),
                data_files=data_files(data_loader.dataset),
                config=OmegaConf.to_container(self.cfg.config, resolve=True),
            )
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        return result

    def after_evaluation(self, val_result: Any, split_name: str, epoch: Any, **kwargs: Any):
        return val_result

    def _checkpoint(self) -> str | None:
        """The weights loaded last, which decide the evaluated model: `--checkpoint`, else
        `finetuned` only when `load_finetuned` loaded it, else `init_from` / `pretrained`.
        A file the config names but the model did not load is never named."""
        path = self.settings.checkpoint or initial_weights(self.cfg)
        return str(Path(path).resolve()) if path else None
