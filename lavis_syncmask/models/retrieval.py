"""Encoding a retrieval set once and scoring image-text pairs with the ITM head: the model side
of the retrieval protocols (`lavis_syncmask.evaluation`), and LAVIS's `compute_sim_matrix`
contract on top of the streaming O(N x k) search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from lavis_syncmask.evaluation import streaming_topk
from lavis_syncmask.models.backbones import encode_image

PairScorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _main_process() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@dataclass
class EncodedSet:
    """Everything the ITC search and the ITM re-ranking need, computed once."""

    image_feat: torch.Tensor  # (N, D) normalised ITC features of the image rows
    image_embeds: torch.Tensor  # (N, 1 + P, Dv) ViT tokens, kept on the CPU in half precision
    text_feat: torch.Tensor  # (M, D)
    text_ids: torch.Tensor  # (M, T) token ids; unimodal text is re-encoded for each ITM batch
    text_att: torch.Tensor  # (M, T)


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
        out = model.encode_text(tok.input_ids, tok.attention_mask, momentum=momentum)
        feats.append(F.normalize(proj(out.last_hidden_state[:, 0]), dim=-1))
        ids.append(tok.input_ids)
        atts.append(tok.attention_mask)
    return torch.cat(feats), torch.cat(ids), torch.cat(atts)


@torch.no_grad()
def encode_set(model: Any, image_loader: Any, texts: Sequence[str]) -> EncodedSet:
    """Encode every image row of `image_loader` (batches with an `image` key, in dataset
    order) and every text."""
    feats, embeds = [], []
    for samples in tqdm(image_loader, desc="encode images", disable=not _main_process()):
        tokens = encode_image(model.visual_encoder, samples["image"].to(model.device))
        feats.append(F.normalize(model.vision_proj(tokens[:, 0]), dim=-1))
        embeds.append(tokens.half().cpu())
    text_feat, text_ids, text_att = text_features(model, texts)
    return EncodedSet(torch.cat(feats), torch.cat(embeds), text_feat, text_ids, text_att)


def itm_pair_scorer(model: Any, encoded: EncodedSet, batch_size: int = 128) -> PairScorer:
    """`score(rows (n,), texts (n,)) -> (n,)`: ITM probability that image row and text match."""

    @torch.no_grad()
    def score(rows: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(rows), batch_size):
            r, t = rows[start : start + batch_size].cpu(), texts[start : start + batch_size].cpu()
            image = encoded.image_embeds[r].to(model.device, dtype=torch.float32)
            ids, att = encoded.text_ids[t], encoded.text_att[t]
            text = model.encode_text(ids, att).last_hidden_state
            out.append(F.softmax(model.itm_logits(text, att, image).float(), dim=-1)[:, 1])
        return torch.cat(out).cpu() if out else torch.zeros(0)

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
    encoded = encode_set(model, data_loader, dataset.text)
    scorer = itm_pair_scorer(model, encoded)
    k = min(k_test, len(dataset.text), encoded.image_feat.size(0))
    i2t_sim, i2t_idx, i2t_score = topk_with_itm(encoded.image_feat, encoded.text_feat, k, scorer)
    t2i_sim, t2i_idx, t2i_score = topk_with_itm(
        encoded.text_feat, encoded.image_feat, k, lambda q, g: scorer(g, q)
    )
    i2t = torch.full((encoded.image_feat.size(0), len(dataset.text)), -100.0)
    t2i = torch.full((len(dataset.text), encoded.image_feat.size(0)), -100.0)
    i2t.scatter_(1, i2t_idx.cpu(), (i2t_score + i2t_sim).cpu().float())
    t2i.scatter_(1, t2i_idx.cpu(), (t2i_score + t2i_sim).cpu().float())
    return i2t.numpy(), t2i.numpy()
