"""Encoding a retrieval set once and scoring image-text pairs with the ITM head: the model side
of the retrieval protocols (`lavis_syncmask.evaluation`), and LAVIS's `compute_sim_matrix`
contract on top of the streaming O(N x k) search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from lavis_syncmask.evaluation import streaming_topk
from lavis_syncmask.models.backbones import encode_image

PairScorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def text_features(
    model: Any, texts: Sequence[str], batch_size: int = 256, momentum: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(M, D)` ITC features plus `(M, T)` padded ids and attention of `texts`."""
    proj = model.text_proj_m if momentum else model.text_proj
    feats, ids, atts = [], [], []
    for start in range(0, len(texts), batch_size):
        tok = model.tokenizer(
            list(texts[start : start + batch_size]),
            padding="max_length",
            truncation=True,
            max_length=model.max_txt_len,
            return_tensors="pt",
        ).to(model.device)
        out = model.encode_text(
            tok.input_ids, tok.attention_mask, model.text_encoder_m if momentum else None
        )
        feats.append(F.normalize(proj(out.last_hidden_state[:, 0]), dim=-1))
        ids.append(tok.input_ids)
        atts.append(tok.attention_mask)
    return torch.cat(feats), torch.cat(ids), torch.cat(atts)


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
    """The states `(T, Dt)` that `model.itm_logits` starts from (unimodal text-encoder states
    for ALBEF-style models), of the tokenised texts `ids` / `att` `(M, T)`."""

    def encode(texts: list[int]) -> torch.Tensor:
        return model.itm_text_states(ids[texts], att[texts])

    return LazyCache(encode, batch_size)


def make_itm_scorer(
    model: Any, rows: LazyCache, texts: LazyCache, text_att: torch.Tensor, logits: bool = False
):
    """`score(image rows (n,), text indices (n,)) -> (n,)` ITM match probabilities, or with
    `logits` the match logit (what LAVIS's ALBEF / BLIP retrieval adds to the ITC similarity)."""

    @torch.no_grad()
    def score(image_rows: torch.Tensor, text_index: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(image_rows), rows.batch_size):
            r = image_rows[start : start + rows.batch_size].cpu()
            t = text_index[start : start + rows.batch_size].cpu()
            image = rows.get(r).to(model.device, dtype=torch.float32)
            text = texts.get(t).to(model.device, dtype=torch.float32)
            pair = model.itm_logits(text, text_att[t], image).float()
            out.append((pair if logits else F.softmax(pair, dim=-1))[:, 1].cpu())
        return torch.cat(out) if out else torch.zeros(0)

    return score


@torch.no_grad()
def image_features(model: Any, loader: Any, rows: LazyCache) -> torch.Tensor:
    """ITC features `(N, D)` of every row a loader yields (batches with `image` and `index`);
    the ViT tokens go into the ITM row cache `rows`, so each image is encoded once."""
    main = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    feats = []
    for samples in tqdm(loader, desc="encode images", disable=not main):
        tokens = encode_image(model.visual_encoder, samples["image"].to(model.device))
        feats.append(F.normalize(model.vision_proj(tokens[:, 0]), dim=-1))
        rows.cache.update(zip(samples["index"].tolist(), tokens.half().cpu()))
    return torch.cat(feats)


def sharded_protocol_inputs(
    model: Any, dataset: Any, batch_size: int, scoring: str = "itm"
) -> tuple[torch.Tensor, torch.Tensor, PairScorer]:
    """What `sharded_full_retrieval` needs, computed by this rank for its shard only: the ITC
    features of ALL image rows `(N, D)` and texts `(M, D)` (each rank encodes its slice, then
    they are all-gathered) and an ITM scorer `(rows, texts) -> (n,)` over this rank's rows,
    whose ViT tokens are the only ones it keeps. One process: every row and text.
    `scoring`: `itm` (ITM match probability) | `itm_itc` (ITM match logit + ITC cosine
    similarity, as LAVIS's ALBEF / BLIP retrieval ranks its top k)."""
    from lavis_syncmask.evaluation.sharded import gather_rows, shard_range

    if scoring not in ("itm", "itm_itc"):
        raise ValueError(f"run.full_scoring must be itm or itm_itc, got {scoring!r}")
    own_rows, own_texts = shard_range(len(dataset)), shard_range(len(dataset.text))
    loader = DataLoader(
        Subset(dataset, own_rows), batch_size=batch_size, collate_fn=dataset.collater
    )
    rows = row_encoder(model, dataset, batch_size)
    image_feat = gather_rows(image_features(model, loader, rows))
    feats, ids, att = text_features(model, list(dataset.text)[own_texts.start : own_texts.stop])
    text_feat, text_ids, text_att = gather_rows(feats), gather_rows(ids), gather_rows(att)
    texts = text_encoder(model, text_ids, text_att, batch_size)
    scorer = make_itm_scorer(model, rows, texts, text_att, logits=scoring == "itm_itc")
    if scoring == "itm_itc":
        scorer = plus_itc(scorer, image_feat, text_feat)
    return image_feat, text_feat, scorer


def plus_itc(scorer: PairScorer, image_feat: torch.Tensor, text_feat: torch.Tensor) -> PairScorer:
    """`scorer(rows, texts)` plus the pairs' ITC cosine similarity (LAVIS's `score +
    topk_sim`)."""

    def score(image_rows: torch.Tensor, text_index: torch.Tensor) -> torch.Tensor:
        itc = (image_feat[image_rows].float() * text_feat[text_index].float()).sum(-1)
        return scorer(image_rows, text_index) + itc.cpu()

    return score


def topk_with_itm(
    query_feat: torch.Tensor, gallery_feat: torch.Tensor, k: int, scorer: PairScorer
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ITC top-`k` of each query `(N, k)` (similarities, gallery indices) and the ITM score of
    each of those pairs; `scorer(query_index, gallery_index)`."""
    sims, index = streaming_topk(query_feat, gallery_feat, k)
    queries = torch.arange(index.size(0)).repeat_interleave(index.size(1))
    itm = scorer(queries, index.flatten().cpu()).view_as(index)
    return sims, index, itm


def dense_score_matrices(model: Any, data_loader: Any, k_test: int) -> tuple[Any, Any]:
    """LAVIS `compute_sim_matrix` contract: `(images, texts)` and `(texts, images)` numpy arrays
    holding ITM probability + ITC similarity on each query's top `k_test` and -100 elsewhere.

    The search itself is the streaming O(N x k) one; only this return format is dense, because
    LAVIS's `RetrievalTask` expects it. The project's own retrieval task never builds it.
    """
    dataset = data_loader.dataset
    text_feat, text_ids, text_att = text_features(model, dataset.text)
    rows = row_encoder(model, dataset, data_loader.batch_size or 64)
    image_feat = image_features(model, data_loader, rows)
    texts = text_encoder(model, text_ids, text_att, data_loader.batch_size or 64)
    scorer = make_itm_scorer(model, rows, texts, text_att)
    k = min(k_test, len(dataset.text), image_feat.size(0))
    i2t_sim, i2t_idx, i2t_score = topk_with_itm(image_feat, text_feat, k, scorer)
    t2i_sim, t2i_idx, t2i_score = topk_with_itm(text_feat, image_feat, k, lambda q, g: scorer(g, q))
    i2t = torch.full((image_feat.size(0), len(dataset.text)), -100.0)
    t2i = torch.full((len(dataset.text), image_feat.size(0)), -100.0)
    i2t.scatter_(1, i2t_idx.cpu(), (i2t_score + i2t_sim).cpu().float())
    t2i.scatter_(1, t2i_idx.cpu(), (t2i_score + t2i_sim).cpu().float())
    return i2t.numpy(), t2i.numpy()
