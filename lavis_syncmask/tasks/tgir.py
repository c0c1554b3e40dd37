"""The `syncmask_tgir` task: FashionIQ text-guided image retrieval with
`syncmask_fashion_tgir`; contrastive training on triplets, R@10 / R@50 per category and their
averages, under the gallery convention `original` or `val_union` and the reference rule
(`datasets.fashioniq.exclude_reference`) written next to every number (benchmarks-and-data.md
"FashionIQ")."""

from __future__ import annotations

import logging
from typing import Any

import torch
from lavis.common.registry import registry
from torch.utils.data import DataLoader

from lavis_syncmask.evaluation import tgir_recall, tgir_report, triplet_indices
from lavis_syncmask.tasks.common import EvaluationTask, unwrap

logger = logging.getLogger(__name__)


@registry.register_task("syncmask_tgir")
class SyncMaskTGIRTask(EvaluationTask):
    task_name = "tgir"
    agg_metric = "avg_r10"

    @classmethod
    def setup_task(cls, cfg: Any) -> SyncMaskTGIRTask:
        return cls(cfg, protocol="fashioniq_val")

    def build_datasets(self, cfg: Any) -> dict:
        """The datasets; the `fashioniq` builder checks `gallery` and `exclude_reference`,
        and its val set carries them to `run_protocol`."""
        datasets = super().build_datasets(cfg)
        if "fashioniq" not in datasets:
            raise ValueError("syncmask_tgir evaluates the `fashioniq` dataset: add it to datasets:")
        return datasets

    @torch.no_grad()
    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        model = unwrap(model)
        batch_size = self.settings.batch_size_eval
        per_category = {}
        for category in dataset.categories:
            queries, gallery = dataset.queries[category], dataset.galleries[category]
            query_feat = torch.cat(
                [
                    model.query_features(s["reference_image"], s["text_input"])
                    for s in DataLoader(queries, batch_size=batch_size, collate_fn=queries.collater)
                ]
            )
            gallery_feat = torch.cat(
                [
                    model.target_features(s["image"])
                    for s in DataLoader(gallery, batch_size=batch_size, collate_fn=gallery.collater)
                ]
            )
            target, reference = triplet_indices(gallery.asins, queries.triplets)
            per_category[category] = tgir_recall(
                query_feat, gallery_feat, target, reference,
                exclude_reference=dataset.exclude_reference,
            )  # fmt: skip
        metrics = tgir_report(
            per_category, dataset.gallery, exclude_reference=dataset.exclude_reference
        )
        logger.info("FashionIQ val\n%s", metrics["table"])
        return {"metrics": metrics, "gallery": dataset.gallery}
