"""Building blocks of the semi-hard batch sampler (method.md section 4): text similarity
(`similarity`), per-epoch bookkeeping (`pools`) and batch construction (`packing`). The sampler
itself is `lavis_syncmask.sampling.batch_sampler.SemiHardBatchSampler`."""

from __future__ import annotations

from lavis_syncmask.sampling.packing import Catalogue, Mode, pack_epoch
from lavis_syncmask.sampling.settings import (
    SAMPLER_MODES,
    SIM_UPPER,
    SamplerMode,
    SamplerSettings,
)
from lavis_syncmask.sampling.similarity import (
    NeighbourTable,
    build_neighbours,
    deduplicate_texts,
    embedding_features,
    pair_similarity,
    tfidf_features,
)

__all__ = [
    "Catalogue",
    "Mode",
    "SAMPLER_MODES",
    "SIM_UPPER",
    "SamplerMode",
    "SamplerSettings",
    "NeighbourTable",
    "build_neighbours",
    "deduplicate_texts",
    "embedding_features",
    "pack_epoch",
    "pair_similarity",
    "tfidf_features",
]
