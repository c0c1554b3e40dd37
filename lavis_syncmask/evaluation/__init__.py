"""Downstream evaluation protocols as pure functions over features, scores and callbacks
(benchmarks-and-data.md): FashionGen sample-100 and full retrieval, category / subcategory
recognition, FashionIQ text-guided image retrieval, and provenance-rich metric files.

Nothing here builds or runs a model: tasks pass features and ITM score callbacks in.
"""

from __future__ import annotations

from lavis_syncmask.evaluation.full_retrieval import full_retrieval, rerank_topk, streaming_topk
from lavis_syncmask.evaluation.recall import (
    batched_pair_scores,
    bidirectional_recalls,
    rank_of_first_hit,
    recall_at_k,
)
from lavis_syncmask.evaluation.recognition import classification_metrics
from lavis_syncmask.evaluation.report import write_metrics
from lavis_syncmask.evaluation.sample100 import (
    Sample100Set,
    build_sample100,
    evaluate_sample100,
    sample100_repeats,
)
from lavis_syncmask.evaluation.tgir import (
    GALLERIES,
    build_gallery,
    tgir_recall,
    tgir_report,
    triplet_indices,
)

__all__ = [
    "GALLERIES",
    "Sample100Set",
    "batched_pair_scores",
    "bidirectional_recalls",
    "build_gallery",
    "build_sample100",
    "classification_metrics",
    "evaluate_sample100",
    "full_retrieval",
    "rank_of_first_hit",
    "recall_at_k",
    "rerank_topk",
    "sample100_repeats",
    "streaming_topk",
    "tgir_recall",
    "tgir_report",
    "triplet_indices",
    "write_metrics",
]
