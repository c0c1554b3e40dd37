"""LAVIS's ALBEF and BLIP classes with the tokenizer handed in instead of downloaded, and the
retrieval interface of `lavis_syncmask.baselines.interface`. Nothing else is overridden: the
constructors, forwards and losses are LAVIS's.
"""

from __future__ import annotations

from typing import Any

import torch
from lavis.models.albef_models.albef_pretrain import AlbefPretrain
from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
from lavis.models.blip_models.blip_pretrain import BlipPretrain
from lavis.models.blip_models.blip_retrieval import BlipRetrieval

from lavis_syncmask.baselines.interface import AlbefInterface, BlipInterface


class GivenTokenizer:
    """LAVIS's constructors call `self.init_tokenizer()`, which downloads bert-base-uncased
    (lavis-notes.md); here it returns the tokenizer passed as `tokenizer=`."""

    def __init__(self, *args: Any, tokenizer: Any, **kwargs: Any) -> None:
        # Stored before nn.Module.__init__ runs, because LAVIS's __init__ asks for it at once.
        object.__setattr__(self, "_given_tokenizer", tokenizer)
        super().__init__(*args, **kwargs)

    def init_tokenizer(self) -> Any:
        return self.__dict__.pop("_given_tokenizer")


class OfflineAlbefPretrain(AlbefInterface, GivenTokenizer, AlbefPretrain):
    """`AlbefPretrain` (ITC + ITM + MLM with random masks). It also keeps the last MLM mask
    (`last_mlm_mask`, `(B, T)` bool), for the benchmark's word sync precision."""

    last_mlm_mask: torch.Tensor | None = None

    def mask(self, input_ids, vocab_size, device, targets=None, **kwargs):  # noqa: ANN001, ANN201
        out = super().mask(input_ids, vocab_size, device, targets=targets, **kwargs)
        if targets is not None:
            self.last_mlm_mask = (out[1] != -100).detach()
        return out


class OfflineAlbefRetrieval(AlbefInterface, GivenTokenizer, AlbefRetrieval):
    """`AlbefRetrieval` (LAVIS's `albef_retrieval`)."""


class OfflineBlipPretrain(BlipInterface, GivenTokenizer, BlipPretrain):
    """`BlipPretrain` (ITC + ITM + captioning LM)."""


class OfflineBlipRetrieval(BlipInterface, GivenTokenizer, BlipRetrieval):
    """`BlipRetrieval` (LAVIS's `blip_retrieval`)."""
