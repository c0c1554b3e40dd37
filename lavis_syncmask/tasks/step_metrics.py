"""What a pretraining step measures besides its losses, for every model the task trains.

- `FeatureWatch`: the mean pairwise cosine of the batch's ITC features (image and text
  projections, the student's); near 1 means the features collapsed (the benchmark's queue
  diagnosis). Every model here names its ITC projections `vision_proj` / `text_proj`.
- `masked_word_precision`: for LAVIS's ALBEF, whose MLM masks are random per token, the share
  of masked content-word tokens that the paired view shows: the statistic SyncMask reports as
  `word_sync_precision` (stop-words and punctuation left out as there).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

PROJECTIONS = ("vision_proj", "text_proj")


def mean_off_diagonal_cosine(features: torch.Tensor) -> float:
    """Mean cosine between different rows of `(N, D)` features (1.0: all rows parallel)."""
    rows = F.normalize(features.detach().float(), dim=-1)
    n = rows.shape[0]
    if n < 2:
        return math.nan
    sims = rows @ rows.T
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


class FeatureWatch:
    """Forward hooks on a model's ITC projections; `cosines()` after a step gives
    `image_cos` / `text_cos` of that step's student features (the first call of each)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.features: dict[str, torch.Tensor] = {}

    def attach(self, model: Any) -> None:
        if model is self.model:
            return
        self.model = model
        for name in PROJECTIONS:
            module = getattr(model, name, None)
            if module is not None:
                module.register_forward_hook(self._keeper(name))

    def _keeper(self, name: str) -> Any:
        def keep(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            self.features.setdefault(name, output.detach())  # the student's, before the teacher's

        return keep

    def start(self) -> None:
        self.features.clear()

    def cosines(self) -> dict[str, float]:
        named = {"vision_proj": "image_cos", "text_proj": "text_cos"}
        return {named[k]: mean_off_diagonal_cosine(v) for k, v in self.features.items()}


def masked_word_precision(model: Any, samples: dict[str, Any]) -> float:
    """Share of the last MLM mask's content-word tokens visible in the paired view, for a
    model that keeps `last_mlm_mask` (LAVIS's ALBEF here); NaN without a mask or spans."""
    from lavis_syncmask.masking import TokenTables, word_units
    from lavis_syncmask.models.diagnostics import visible_tokens

    mask = getattr(model, "last_mlm_mask", None)
    if mask is None or "visible_spans" not in samples:
        return math.nan
    tok = model.tokenizer(
        list(samples["text_input"]),
        padding="max_length",
        truncation=True,
        max_length=model.max_txt_len,
        return_tensors="pt",
        return_offsets_mapping=True,
    )
    units = word_units(
        tok.input_ids, tok.attention_mask, TokenTables.from_tokenizer(model.tokenizer), True
    )
    visible = visible_tokens(tok.offset_mapping, samples["visible_spans"])
    masked = mask.cpu() & (units.word_ids >= 0)
    return float((masked & visible).sum() / masked.sum()) if masked.any() else math.nan
