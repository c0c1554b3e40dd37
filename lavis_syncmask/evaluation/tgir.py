"""FashionIQ text-guided image retrieval (TGIR) evaluation (benchmarks-and-data.md, "FashionIQ"):
gallery construction under the two published conventions, R@10 / R@50 per category, and a
report that names the gallery next to every number (the conventions give different scores, so a
number without its gallery is not comparable).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, get_args

import torch
from torch import Tensor

from lavis_syncmask.evaluation.recall import TGIR_KS, rank_of_first_hit, recall_at_k

GalleryConvention = Literal["original", "val_union"]
GALLERIES: tuple[str, ...] = get_args(GalleryConvention)


def build_gallery(
    val_split_ids: list[str], val_triplets: list[dict], convention: GalleryConvention
) -> list[str]:
    """The ASINs of one category's validation gallery.

    Args:
        val_split_ids: the ASINs of `split.{cat}.val.json`.
        val_triplets: the entries of `cap.{cat}.val.json` (`candidate`, `target`, `captions`).
        convention: `"original"` = every ASIN of the split file, in file order (duplicates
            dropped); `"val_union"` = the union of the triplets' reference ("candidate") and
            target ASINs, sorted so the gallery order is deterministic (FashionSAP's choice).

    Example:
        >>> build_gallery(["b", "a"], [{"candidate": "c", "target": "a"}], "val_union")
        ['a', 'c']
    """
    if convention == "original":
        return list(dict.fromkeys(str(asin) for asin in val_split_ids))
    if convention == "val_union":
        union: set[str] = set()
        for i, triplet in enumerate(val_triplets):
            if "candidate" not in triplet or "target" not in triplet:
                raise ValueError(
                    f"val triplet {i} lacks 'candidate' or 'target' (keys {sorted(triplet)}); "
                    "the val_union gallery needs both"
                )
            union.update((str(triplet["candidate"]), str(triplet["target"])))
        return sorted(union)
    raise ValueError(f"gallery convention must be one of {GALLERIES}, got {convention!r}")


def triplet_indices(gallery: Sequence[str], triplets: Sequence[Mapping]) -> tuple[Tensor, Tensor]:
    """`(Q,)` gallery index of each triplet's target and `(Q,)` of its reference (-1 where the
    reference image is not in the gallery, which can happen with the `original` convention).
    A target missing from the gallery is an error: that query could never be answered."""
    position = {asin: i for i, asin in enumerate(gallery)}
    missing = [t.get("target") for t in triplets if str(t.get("target")) not in position]
    if missing:
        raise ValueError(
            f"{len(missing)} triplet target(s) are not in the gallery, e.g. {missing[:5]}"
        )
    target = torch.tensor([position[str(t["target"])] for t in triplets], dtype=torch.long)
    reference = torch.tensor(
        [position.get(str(t.get("candidate")), -1) for t in triplets], dtype=torch.long
    )
    return target, reference


@torch.no_grad()
def tgir_recall(
    query_feats: Tensor,
    gallery_feats: Tensor,
    target_index: Tensor,
    reference_index: Tensor | None,
    ks: Iterable[int] = TGIR_KS,
    *,
    exclude_reference: bool,
    chunk_size: int = 1024,
) -> dict:
    """Recall@K (percent) of composed queries against one category's gallery.

    Args:
        query_feats: `(Q, D)` features of (reference image + modification text) queries.
        gallery_feats: `(G, D)` gallery image features; scores are dot products.
        target_index: `(Q,)` gallery index of each query's target.
        reference_index: `(Q,)` gallery index of each query's reference image, -1 when it is
            not in the gallery; required when `exclude_reference`.
        exclude_reference: drop the reference image from its own query's ranking (it is
            trivially similar to the query). Not applied when reference == target, which
            would make the query unanswerable. FashionSAP and CLIP4Cir keep it for FashionIQ
            (`datasets.fashioniq.exclude_reference: false`, README "FashionIQ gallery").

    Returns:
        `r10`, `r50` (one `r{K}` per K), `n_queries`, `gallery_size`, `exclude_reference`.
    """
    if query_feats.dim() != 2 or gallery_feats.dim() != 2:
        raise ValueError(
            f"features must be (Q, D) and (G, D), got {tuple(query_feats.shape)} and "
            f"{tuple(gallery_feats.shape)}"
        )
    q, g = query_feats.size(0), gallery_feats.size(0)
    target = _check_index(target_index, q, g, "target_index", allow_missing=False)
    if exclude_reference and reference_index is None:
        raise ValueError("exclude_reference=True needs reference_index")
    reference = None
    if exclude_reference:
        reference = _check_index(reference_index, q, g, "reference_index", allow_missing=True)
    ranks = []
    for start in range(0, q, chunk_size):
        stop = min(start + chunk_size, q)
        scores = (query_feats[start:stop] @ gallery_feats.T).detach().cpu().double()
        rows = torch.arange(stop - start)
        if reference is not None:
            ref = reference[start:stop]
            drop = (ref >= 0) & (ref != target[start:stop])
            scores[rows[drop], ref[drop]] = float("-inf")
        hits = torch.zeros_like(scores, dtype=torch.bool)
        hits[rows, target[start:stop]] = True
        ranks.append(rank_of_first_hit(scores, hits))
    metrics: dict = recall_at_k(torch.cat(ranks), ks)
    metrics.update(n_queries=q, gallery_size=g, exclude_reference=exclude_reference)
    return metrics


def _check_index(index: Tensor, q: int, g: int, name: str, allow_missing: bool) -> Tensor:
    index = torch.as_tensor(index).detach().cpu().long()
    if index.shape != (q,):
        raise ValueError(f"{name} must have shape ({q},), got {tuple(index.shape)}")
    low = -1 if allow_missing else 0
    if q and (index.min() < low or index.max() >= g):
        raise ValueError(
            f"{name} values must be in [{low}, {g - 1}], got [{index.min()}, {index.max()}]"
        )
    return index


def tgir_report(per_category: dict[str, dict], gallery: str, *, exclude_reference: bool) -> dict:
    """Per-category and averaged FashionIQ results, each tagged with the gallery convention
    and whether each query's reference image was removed from its ranking.

    Args:
        per_category: category name -> a dict holding at least `r10` and `r50` (e.g. from
            `tgir_recall`), in the order the table should list them.
        gallery: the convention the numbers were measured with (`original` / `val_union`).
        exclude_reference: whether the reference images were removed from the rankings.

    Returns:
        `{cat}_r10`, `{cat}_r50` per category, `avg_r10`, `avg_r50`, `r_mean` (=
        (avg_r10 + avg_r50) / 2), `gallery`, `exclude_reference`, `categories` and `table`, a
        text table whose every line names the gallery and the reference rule.
    """
    if gallery not in GALLERIES:
        raise ValueError(f"gallery must be one of {GALLERIES}, got {gallery!r}")
    if not per_category:
        raise ValueError("per_category is empty")
    out: dict = {}
    for cat, metrics in per_category.items():
        lacking = [key for key in ("r10", "r50") if key not in metrics]
        if lacking:
            raise ValueError(f"category {cat!r} lacks {lacking}; it has {sorted(metrics)}")
        out[f"{cat}_r10"], out[f"{cat}_r50"] = float(metrics["r10"]), float(metrics["r50"])
    cats = list(per_category)
    out["avg_r10"] = sum(out[f"{c}_r10"] for c in cats) / len(cats)
    out["avg_r50"] = sum(out[f"{c}_r50"] for c in cats) / len(cats)
    out["r_mean"] = (out["avg_r10"] + out["avg_r50"]) / 2
    tag = f"gallery={gallery} reference={'removed' if exclude_reference else 'kept'}"
    out.update(gallery=gallery, exclude_reference=exclude_reference, categories=cats)
    out["table"] = _table(out, cats, tag)
    return out


def _table(out: dict, cats: list[str], gallery: str) -> str:
    """`gallery` is the tag every line ends with (convention and reference rule)."""
    width = max(len("average"), *(len(c) for c in cats))
    lines = [f"{'category':<{width}}  {'R@10':>6}  {'R@50':>6}  {gallery}"]
    for cat in cats:
        lines.append(
            f"{cat:<{width}}  {out[f'{cat}_r10']:6.2f}  {out[f'{cat}_r50']:6.2f}  {gallery}"
        )
    lines.append(f"{'average':<{width}}  {out['avg_r10']:6.2f}  {out['avg_r50']:6.2f}  {gallery}")
    lines.append(f"(R@10 + R@50) / 2 = {out['r_mean']:.2f}  {gallery}")
    return "\n".join(lines)
