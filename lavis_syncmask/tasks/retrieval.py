"""The `syncmask_retrieval` task: FashionGen image-text retrieval under a named protocol
(benchmarks-and-data.md), `run.protocol: sample100 | full`, zero-shot from a pretrain checkpoint
or after retrieval fine-tuning (training steps are the model's own ITC + ITM losses).

Evaluation runs on the main process only (the protocols need specific rows, not a sharded
loader); other ranks wait. Every evaluation writes `metrics.json` and `evaluate.txt`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from torch.utils.data import DataLoader
from tqdm import tqdm

from lavis_syncmask.evaluation import full_retrieval, sample100_repeats
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.models.retrieval import text_features
from lavis_syncmask.tasks.common import EvaluationTask, is_main_process, unwrap

PROTOCOLS = ("sample100", "full")


class LazyCache:
    """Per-index encodings computed on first use (in batches) and kept in half precision on
    the CPU: the sample-100 protocol touches only the rows its candidate sets name, and every
    protocol scores each text against many images."""

    def __init__(self, encode: Callable[[list[int]], torch.Tensor], batch_size: int) -> None:
        self.encode, self.batch_size = encode, batch_size
        self.cache: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def get(self, indices: torch.Tensor) -> torch.Tensor:
        wanted = indices.tolist()
        missing = sorted(set(wanted) - self.cache.keys())
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            self.cache.update(zip(chunk, self.encode(chunk).half().cpu()))
        return torch.stack([self.cache[i] for i in wanted])


def row_encoder(model: Any, dataset: Any, batch_size: int) -> LazyCache:
    """ViT tokens `(1 + P, Dv)` of image rows of `dataset`."""

    def encode(rows: list[int]) -> torch.Tensor:
        samples = dataset.collater([dataset[r] for r in rows])
        return encode_image(model.visual_encoder, samples["image"].to(model.device))

    return LazyCache(encode, batch_size)


def text_encoder(model: Any, ids: torch.Tensor, att: torch.Tensor, batch_size: int) -> LazyCache:
    """Unimodal text-encoder states `(T, Dt)` of the tokenised texts `ids` / `att` `(M, T)`."""

    def encode(texts: list[int]) -> torch.Tensor:
        return model.encode_text(ids[texts], att[texts]).last_hidden_state

    return LazyCache(encode, batch_size)


def make_itm_scorer(model: Any, rows: LazyCache, texts: LazyCache, text_att: torch.Tensor):
    """`score(image rows (n,), text indices (n,)) -> (n,)` ITM match probabilities."""

    @torch.no_grad()
    def score(image_rows: torch.Tensor, text_index: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(image_rows), rows.batch_size):
            r = image_rows[start : start + rows.batch_size].cpu()
            t = text_index[start : start + rows.batch_size].cpu()
            image = rows.get(r).to(model.device, dtype=torch.float32)
            text = texts.get(t).to(model.device, dtype=torch.float32)
            logits = model.itm_logits(text, text_att[t], image).float()
            out.append(F.softmax(logits, dim=-1)[:, 1].cpu())
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

    def run_protocol(self, model: Any, dataset: Any) -> dict[str, Any]:
        model = unwrap(model)
        run = self.cfg.run_cfg
        batch_size = int(run.get("batch_size_eval", 64))
        text_feat, text_ids, text_att = text_features(model, dataset.text)
        rows = row_encoder(model, dataset, batch_size)
        scorer = make_itm_scorer(
            model, rows, text_encoder(model, text_ids, text_att, batch_size), text_att
        )
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
        image_feat = self._image_features(model, dataset, batch_size, rows)
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
    def _image_features(model: Any, dataset: Any, batch_size: int, rows: LazyCache) -> torch.Tensor:
        """ITC features `(N, D)` of every row; the ViT tokens go into the ITM row cache, so
        each image is encoded once."""
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collater)
        feats = []
        for samples in tqdm(loader, desc="encode images", disable=not is_main_process()):
            tokens = encode_image(model.visual_encoder, samples["image"].to(model.device))
            feats.append(F.normalize(model.vision_proj(tokens[:, 0]), dim=-1))
            rows.cache.update(zip(samples["index"].tolist(), tokens.half().cpu()))
        return torch.cat(feats)
