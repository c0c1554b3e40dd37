"""The `syncmask_retrieval` task: FashionGen image-text retrieval under a named protocol
(benchmarks-and-data.md), `run.protocol: sample100 | full`, zero-shot from a pretrain checkpoint
or after retrieval fine-tuning (training steps are the model's own ITC + ITM losses). LAVIS's
own `albef_retrieval` / `blip_retrieval` (and `albef_pretrain` / `blip_pretrain`) are accepted as
`model.arch` and built offline by `lavis_syncmask.baselines`, so they are scored the same way.

The full protocol runs on every rank, sharded (`evaluation.sharded`: each rank encodes and
re-ranks its slice of the rows); sample-100 runs on the main process while the others wait.
Every evaluation writes `metrics.json` and `evaluate.txt` (main process).
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import torch
from lavis.common.registry import registry

from lavis_syncmask.baselines import BASELINE_ARCHS, build_baseline
from lavis_syncmask.evaluation import sample100_repeats
from lavis_syncmask.evaluation.sharded import sharded_full_retrieval
from lavis_syncmask.models.config import model_arch, model_section
from lavis_syncmask.models.inference import (
    make_itm_scorer,
    row_encoder,
    sharded_protocol_inputs,
    text_encoder,
    text_features,
)
from lavis_syncmask.runner.settings import Protocol, RunSettings
from lavis_syncmask.tasks.common import EvaluationTask, unwrap

PROTOCOLS: tuple[str, ...] = get_args(Protocol)


@registry.register_task("syncmask_retrieval")
class SyncMaskRetrievalTask(EvaluationTask):
    task_name = "retrieval"

    @classmethod
    def setup_task(cls, cfg: Any) -> SyncMaskRetrievalTask:
        return cls(cfg, protocol=RunSettings.of(cfg).protocol)

    def every_rank_evaluates(self) -> bool:
        return self.protocol == "full"  # sharded by rank; sample100 runs on the main process

    def build_model(self, cfg: Any) -> Any:
        """LAVIS's own `albef_retrieval` / `blip_retrieval` (and the pretraining classes) are
        built offline by `lavis_syncmask.baselines`; every other arch as LAVIS builds it."""
        if model_arch(cfg) in BASELINE_ARCHS:
            return build_baseline(model_section(cfg))
        return super().build_model(cfg)

    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        run = self.settings
        return evaluate_retrieval(
            unwrap(model),
            dataset,
            self.protocol,
            batch_size=run.batch_size_eval,
            seeds=run.eval_seeds,
            n_queries=run.n_queries,
            k_test=run.k_test,
            scoring=run.full_scoring,
        )


def evaluate_retrieval(
    model: Any,
    dataset: Any,
    protocol: str,
    *,
    batch_size: int = 64,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    n_queries: int = 1000,
    k_test: int = 128,
    scoring: str = "itm",
) -> dict[str, Any]:
    """`{"metrics", "seeds"}` of `protocol` (sample100 | full) for any model with the
    retrieval interface of `lavis_syncmask.models.inference` (syncmask_fashion, the
    `lavis_syncmask.baselines`) on a `fashiongen_retrieval` split. The full protocol is
    sharded over the process group's ranks (every rank must call it); sample-100 runs where
    it is called."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "full":
        image_feat, text_feat, scorer = sharded_protocol_inputs(model, dataset, batch_size, scoring)
        metrics = sharded_full_retrieval(
            image_feat,
            text_feat,
            np.asarray(dataset.row_product),
            k_test=k_test,
            itm_i2t=lambda q, g: scorer(q, g),
            itm_t2i=lambda q, g: scorer(g, q),
        )
        return {"metrics": {**metrics, "full_scoring": scoring}, "seeds": []}
    _, text_ids, text_att = text_features(model, dataset.text)
    rows = row_encoder(model, dataset, batch_size)
    scorer = make_itm_scorer(
        model, rows, text_encoder(model, text_ids, text_att, batch_size), text_att
    )
    product_text = {int(p): i for i, p in enumerate(dataset.products)}

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
