"""The `syncmask_retrieval` task: FashionGen image-text retrieval under a named protocol
(benchmarks-and-data.md), `run.protocol: sample100 | full`, zero-shot from a pretrain checkpoint
or after retrieval fine-tuning (training steps are the model's own ITC + ITM losses). LAVIS's
own `albef_retrieval` / `blip_retrieval` (and `albef_pretrain` / `blip_pretrain`) are accepted as
`model.arch` and built offline by `lavis_syncmask.baselines`, so they are scored the same way.

Evaluation runs on the main process only (the protocols need specific rows, not a sharded
loader); other ranks wait. Every evaluation writes `metrics.json` and `evaluate.txt`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lavis.common.registry import registry
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from lavis_syncmask.baselines import BASELINE_ARCHS, build_baseline
from lavis_syncmask.evaluation import full_retrieval, sample100_repeats
from lavis_syncmask.models.inference import (
    image_features,
    make_itm_scorer,
    row_encoder,
    text_encoder,
    text_features,
)
from lavis_syncmask.tasks.common import EvaluationTask, unwrap

PROTOCOLS = ("sample100", "full")


@registry.register_task("syncmask_retrieval")
class SyncMaskRetrievalTask(EvaluationTask):
    task_name = "retrieval"

    @classmethod
    def setup_task(cls, cfg: Any) -> SyncMaskRetrievalTask:
        run = cfg.run_cfg
        protocol = run.get("protocol", "sample100")
        if protocol not in PROTOCOLS:
            raise ValueError(f"run.protocol must be one of {PROTOCOLS}, got {protocol!r}")
        return cls(cfg, protocol=protocol)

    def build_model(self, cfg: Any) -> Any:
        """LAVIS's own `albef_retrieval` / `blip_retrieval` (and the pretraining classes) are
        built offline by `lavis_syncmask.baselines`; every other arch as LAVIS builds it."""
        arch = cfg.model_cfg.get("arch")
        if arch in BASELINE_ARCHS:
            return build_baseline(OmegaConf.to_container(cfg.model_cfg, resolve=True))
        return super().build_model(cfg)

    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        run = self.cfg.run_cfg
        seeds = tuple(run.get("seeds", range(int(run.get("repeats", 5)))))
        return retrieval_metrics(
            unwrap(model),
            dataset,
            self.protocol,
            batch_size=int(run.get("batch_size_eval", 64)),
            seeds=seeds,
            n_queries=int(run.get("n_queries", 1000)),
            k_test=int(run.get("k_test", 128)),
        )


def retrieval_metrics(
    model: Any,
    dataset: Any,
    protocol: str,
    *,
    batch_size: int = 64,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    n_queries: int = 1000,
    k_test: int = 128,
) -> dict[str, Any]:
    """`{"metrics", "seeds"}` of `protocol` (sample100 | full) for any model with the
    retrieval interface of `lavis_syncmask.models.inference` (syncmask_fashion, the
    `lavis_syncmask.baselines`) on a `fashiongen_retrieval` split."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    text_feat, text_ids, text_att = text_features(model, dataset.text)
    rows = row_encoder(model, dataset, batch_size)
    scorer = make_itm_scorer(
        model, rows, text_encoder(model, text_ids, text_att, batch_size), text_att
    )
    product_text = {int(p): i for i, p in enumerate(dataset.products)}
    if protocol == "sample100":

        def score_pairs(image_rows: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
            texts = torch.tensor([product_text[int(p)] for p in products])
            return scorer(image_rows, texts)

        metrics = sample100_repeats(
            np.asarray(dataset.product_ids_per_row),
            dataset.product_subcategory,
            score_pairs,
            seeds=seeds,
            n_queries=n_queries,
        )
        return {"metrics": metrics, "seeds": list(seeds)}
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collater)
    image_feat = image_features(model, loader, rows)
    metrics = full_retrieval(
        image_feat,
        text_feat,
        np.asarray(dataset.row_product),
        k_test=k_test,
        itm_i2t=lambda q, g: scorer(q, g),
        itm_t2i=lambda q, g: scorer(g, q),
    )
    return {"metrics": metrics, "seeds": []}
