"""The `syncmask_retrieval` task: FashionGen image-text retrieval under a named protocol
(benchmarks-and-data.md), `run.protocol: sample100 | full`, zero-shot from a pretrain checkpoint
or after retrieval fine-tuning (training steps are the model's own ITC + ITM losses).

Evaluation runs on the main process only (the protocols need specific rows, not a sharded
loader); other ranks wait. Every evaluation writes `metrics.json` and `evaluate.txt`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from torch.utils.data import DataLoader, Subset

from lavis_syncmask.evaluation import full_retrieval, sample100_repeats
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.models.retrieval import text_features
from lavis_syncmask.tasks.common import EvaluationTask, unwrap

PROTOCOLS = ("sample100", "full")


class RowEncoder:
    """ViT tokens of image rows, encoded on first use and cached in half precision: the
    sample-100 protocol touches only the rows its candidate sets name."""

    def __init__(self, model: Any, dataset: Any, batch_size: int) -> None:
        self.model, self.dataset, self.batch_size = model, dataset, batch_size
        self.cache: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def tokens(self, rows: torch.Tensor) -> torch.Tensor:
        wanted = rows.tolist()
        missing = sorted(set(wanted) - self.cache.keys())
        if missing:
            loader = DataLoader(
                Subset(self.dataset, missing),
                batch_size=self.batch_size,
                collate_fn=self.dataset.collater,
            )
            position = 0
            for samples in loader:
                out = encode_image(
                    self.model.visual_encoder, samples["image"].to(self.model.device)
                )
                for token in out.half().cpu():
                    self.cache[missing[position]] = token
                    position += 1
        return torch.stack([self.cache[r] for r in wanted])


def make_itm_scorer(model: Any, rows: RowEncoder, text_ids: torch.Tensor, text_att: torch.Tensor):
    """`score(image rows (n,), text indices (n,)) -> (n,)` ITM match probabilities."""

    @torch.no_grad()
    def score(image_rows: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(image_rows), rows.batch_size):
            r = image_rows[start : start + rows.batch_size].cpu()
            t = texts[start : start + rows.batch_size].cpu()
            image = rows.tokens(r).to(model.device, dtype=torch.float32)
            ids, att = text_ids[t], text_att[t]
            text = model.encode_text(ids, att).last_hidden_state
            out.append(F.softmax(model.itm_logits(text, att, image).float(), -1)[:, 1].cpu())
        return torch.cat(out) if out else torch.zeros(0)

    return score


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

    def train_step(self, model: Any, samples: dict[str, Any]) -> torch.Tensor:
        return model(samples).loss

    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        model = unwrap(model)
        run = self.cfg.run_cfg
        batch_size = int(run.get("batch_size_eval", 64))
        rows = RowEncoder(model, dataset, batch_size)
        text_feat, text_ids, text_att = text_features(model, dataset.text)
        scorer = make_itm_scorer(model, rows, text_ids, text_att)
        product_text = {int(p): i for i, p in enumerate(dataset.products)}
        if self.protocol == "sample100":
            seeds = tuple(run.get("seeds", range(int(run.get("repeats", 5)))))

            def score_pairs(image_rows: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
                texts = torch.tensor([product_text[int(p)] for p in products])
                return scorer(image_rows, texts)

            metrics = sample100_repeats(
                np.asarray(dataset.product_ids_per_row),
                dataset.product_subcategory,
                score_pairs,
                seeds=seeds,
                n_queries=int(run.get("n_queries", 1000)),
            )
            return {"metrics": metrics, "seeds": list(seeds)}
        image_feat = self._image_features(model, dataset, batch_size)
        metrics = full_retrieval(
            image_feat,
            text_feat,
            np.asarray(dataset.row_product),
            k_test=int(run.get("k_test", 128)),
            itm_i2t=lambda q, g: scorer(q, g),
            itm_t2i=lambda q, g: scorer(g, q),
        )
        return {"metrics": metrics, "seeds": []}

    @staticmethod
    @torch.no_grad()
    def _image_features(model: Any, dataset: Any, batch_size: int) -> torch.Tensor:
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collater)
        feats = []
        for samples in loader:
            tokens = encode_image(model.visual_encoder, samples["image"].to(model.device))
            feats.append(F.normalize(model.vision_proj(tokens[:, 0]), dim=-1))
        return torch.cat(feats)
