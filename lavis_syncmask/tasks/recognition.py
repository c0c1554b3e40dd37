"""The `syncmask_recognition` task: category (CR) or subcategory (SCR) recognition on
FashionGen, fine-tuning `syncmask_fashion_cls` end to end; per-image evaluation with accuracy
and macro-F1 (benchmarks-and-data.md)."""

from __future__ import annotations

from typing import Any

import torch
from lavis.common.registry import registry
from torch.utils.data import DataLoader

from lavis_syncmask.evaluation import classification_metrics
from lavis_syncmask.models.config import model_section, set_model_key
from lavis_syncmask.tasks.common import EvaluationTask, unwrap


@registry.register_task("syncmask_recognition")
class SyncMaskRecognitionTask(EvaluationTask):
    task_name = "recognition"
    agg_metric = "accuracy"

    @classmethod
    def setup_task(cls, cfg: Any) -> SyncMaskRecognitionTask:
        return cls(cfg, protocol="per_image")

    def build_datasets(self, cfg: Any) -> dict:
        datasets = super().build_datasets(cfg)
        sizes = {
            len(split.label_map)
            for splits in datasets.values()
            for split in splits.values()
            if hasattr(split, "label_map")
        }
        if len(sizes) != 1:
            raise ValueError(f"expected one label map across the recognition splits, got {sizes}")
        self.num_classes = sizes.pop()
        return datasets

    def build_model(self, cfg: Any) -> Any:
        if model_section(cfg).get("num_classes") is None:
            set_model_key(cfg, "num_classes", self.num_classes)  # the dataset's label map
        return super().build_model(cfg)

    @torch.no_grad()
    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        model = unwrap(model)
        batch_size = self.settings.batch_size_eval
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collater)
        truth, predicted = [], []
        for samples in loader:
            predicted.append(model.predict_logits(samples).argmax(-1).cpu())
            truth.append(samples["label"].cpu())
        metrics = classification_metrics(torch.cat(truth).numpy(), torch.cat(predicted).numpy())
        metrics["label_key"] = getattr(dataset, "label_key", None)
        return {"metrics": metrics, "seeds": []}
