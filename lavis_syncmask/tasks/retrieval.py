"""The `syncmask_retrieval` task: FashionGen image-text retrieval under a named protocol
(benchmarks-and-data.md), `run.protocol: sample100 | full`, zero-shot from a pretrain checkpoint
or after retrieval fine-tuning (training steps are the model's own ITC + ITM losses).

The full protocol runs on every rank, sharded (`evaluation.sharded`: each rank encodes and
re-ranks its slice of the rows); sample-100 runs on the main process while the others wait.
Every evaluation writes `metrics.json` and `evaluate.txt` (main process).
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import torch
from lavis.common.registry import registry

from lavis_syncmask.evaluation import sample100_repeats
from lavis_syncmask.evaluation.sharded import sharded_full_retrieval
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
        return cls(cfg, protocol=RunSettings.from_run_cfg(cfg.run_cfg).protocol)

    def every_rank_evaluates(self) -> bool:
        return self.protocol == "full"  # sharded by rank; sample100 runs on the main process

    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        model = unwrap(model)
        run = self.settings
        batch_size = run.batch_size_eval
        if self.protocol == "full":
            image_feat, text_feat, scorer = sharded_protocol_inputs(model, dataset, batch_size)
            metrics = sharded_full_retrieval(
                image_feat,
                text_feat,
                np.asarray(dataset.row_product),
                k_test=run.k_test,
                itm_i2t=lambda q, g: scorer(q, g),
                itm_t2i=lambda q, g: scorer(g, q),
            )
            return {"metrics": metrics, "seeds": []}
        _, text_ids, text_att = text_features(model, dataset.text)
        rows = row_encoder(model, dataset, batch_size)
        scorer = make_itm_scorer(
            model, rows, text_encoder(model, text_ids, text_att, batch_size), text_att
        )
        product_text = {int(p): i for i, p in enumerate(dataset.products)}
        seeds = run.eval_seeds

        def score_pairs(image_rows: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
            texts = torch.tensor([product_text[int(p)] for p in products])
            return scorer(image_rows, texts)

        metrics = sample100_repeats(
            np.asarray(dataset.product_ids_per_row),
            dataset.product_subcategory,
            score_pairs,
            seeds=seeds,
            n_queries=run.n_queries,
        )
        return {"metrics": metrics, "seeds": list(seeds)}
