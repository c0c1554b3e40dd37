"""The retrieval interface of `lavis_syncmask.models.inference` (the one `syncmask_fashion`
offers) for LAVIS's ALBEF and BLIP: unimodal text states for ITC, the states the ITM head's
fusion pass starts from, and the ITM logits. Everything runs LAVIS's own modules.

ALBEF fuses in its upper text layers (`mode="fusion"` over unimodal states); BLIP runs every
layer again with cross-attention on the input embeddings, with `[ENC]` in place of `[CLS]`
(LAVIS's BLIP ITM), so its ITM starts from word embeddings instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lavis_syncmask.models import inference


def _bert(encoder: nn.Module) -> nn.Module:
    """The BertModel inside `BertForMaskedLM` (ALBEF pretraining), or the encoder itself
    (`XBertEncoder`, ALBEF / BLIP retrieval)."""
    return getattr(encoder, "bert", encoder)


def _image_att(image_embeds: torch.Tensor) -> torch.Tensor:
    return torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)


class _Features:
    """What both families share; `text_encoder`, `text_encoder_m`, `itm_head`, `tokenizer`,
    `device` are LAVIS's own attributes of every ALBEF / BLIP class."""

    text_encoder: nn.Module
    text_encoder_m: nn.Module
    itm_head: nn.Module
    itm_mode: str  # how LAVIS's med encoder runs the ITM pass ("fusion" | "multimodal")

    def encode_text(self, ids: torch.Tensor, att: torch.Tensor, momentum: bool = False) -> Any:
        """Unimodal text encoding `(B, T, Dt)` (`.last_hidden_state`) of ids / attention."""
        encoder = self.text_encoder_m if momentum else self.text_encoder
        return _bert(encoder)(ids, attention_mask=att, return_dict=True, mode="text")

    def itm_logits(
        self, states: torch.Tensor, att: torch.Tensor, image_embeds: torch.Tensor
    ) -> torch.Tensor:
        """`(B, 2)` ITM logits of `itm_text_states` `(B, T, Dt)` against ViT tokens
        `(B, 1+P, Dv)`, through the text encoder in `itm_mode`."""
        out = _bert(self.text_encoder)(
            encoder_embeds=states,
            attention_mask=att,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=_image_att(image_embeds),
            return_dict=True,
            mode=self.itm_mode,
        )
        return self.itm_head(out.last_hidden_state[:, 0])

    @torch.no_grad()
    def sampler_text_embeddings(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Momentum ITC text embeddings `(N, D)` (the batch sampler's similarity refresh)."""
        return inference.text_features(self, texts, batch_size, momentum=True)[0]


class AlbefInterface(_Features):
    """ALBEF: ITM is the fusion layers over the unimodal text states."""

    def itm_text_states(self, ids: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """`(B, T, Dt)` unimodal states that `itm_logits` fuses with an image."""
        return self.encode_text(ids, att).last_hidden_state

    itm_mode = "fusion"  # LAVIS med: only the fusion layers, over unimodal states


class BlipInterface(_Features):
    """BLIP: ITM re-encodes the text with cross-attention in every layer, `[ENC]` first."""

    tokenizer: Any
    itm_mode = "multimodal"  # cross-attention in every layer

    def itm_text_states(self, ids: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """`(B, T, Dt)` word embeddings of the text with `[ENC]` as its first token."""
        ids = ids.clone()
        ids[:, 0] = self.tokenizer.enc_token_id
        return _bert(self.text_encoder).embeddings(input_ids=ids)
