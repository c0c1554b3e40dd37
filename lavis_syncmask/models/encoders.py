"""The image and text/fusion encoders every model of the plugin is built on (method.md §2):
a ViT, and a BERT whose first `text_layers` are unimodal and whose last `fusion_layers`
cross-attend to the image tokens.

`FusionEncoders` holds only these two encoders and the tokenizer, with the calls that run
them. The pretraining model (`syncmask_fashion`) adds its projections, momentum teacher, queue
and MIM decoder on top; the downstream heads add a small head and nothing else, so fine-tuning
does not carry pretraining state (issue 11). The attribute names (`visual_encoder`,
`text_encoder`) are those of the pretraining checkpoints, so their weights load by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lavis.models.base_model import BaseModel
from torch import nn

from lavis_syncmask.common.checkpoint import Reasons, load_checkpoint, load_weights, model_state
from lavis_syncmask.models.backbones import build_text_encoder, build_vision_encoder
from lavis_syncmask.models.config import BackboneConfig


class FusionEncoders(BaseModel):
    """Tokenizer, `visual_encoder` (ViT) and `text_encoder` (BERT with fusion layers)."""

    def __init__(self, backbone: BackboneConfig, tokenizer: Any) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.max_txt_len = backbone.max_txt_len
        self.patch_size = backbone.patch_size
        self.grid = backbone.image_size // backbone.patch_size
        self.visual_encoder = build_vision_encoder(backbone)
        self.text_encoder = build_text_encoder(backbone, len(tokenizer))

    def tokenize(self, texts: list[str], offsets: bool = False) -> Any:
        return self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.max_txt_len,
            return_tensors="pt",
            return_offsets_mapping=offsets,
        ).to(self.device)

    def encode_text(
        self, ids: torch.Tensor, att: torch.Tensor, encoder: nn.Module | None = None
    ) -> Any:
        """Unimodal text encoding (`last_hidden_state` `(B, T, Dt)`) by `encoder` (default:
        `text_encoder`; the pretraining model passes its momentum copy)."""
        encoder = encoder if encoder is not None else self.text_encoder
        return encoder.bert(ids, attention_mask=att, return_dict=True, mode="text")

    def fuse(
        self,
        text_embeds: torch.Tensor,
        att: torch.Tensor,
        image_embeds: torch.Tensor,
        encoder: nn.Module | None = None,
        output_attentions: bool = False,
    ) -> torch.Tensor:
        """Fusion-encoder output `(B, T, Dt)` of unimodal text tokens attending to the image."""
        encoder = encoder if encoder is not None else self.text_encoder
        image_att = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
        return encoder.bert(
            encoder_embeds=text_embeds,
            attention_mask=att,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_att,
            return_dict=True,
            mode="fusion",
            output_attentions=output_attentions,
        ).last_hidden_state

    def checkpoint_skips(self, state: Mapping[str, torch.Tensor]) -> Reasons:
        """Checkpoint keys this model leaves out on purpose, with why (none by default)."""
        return {}

    def load_checkpoint(self, url_or_filename: str) -> Any:
        """Load a local checkpoint written by the runner (or a bare state dict): strict, except
        the keys `checkpoint_skips` names, each logged with its reason."""
        path = Path(url_or_filename).expanduser()
        state = model_state(load_checkpoint(path, "model.finetuned"))
        return load_weights(
            self, state, f"model.finetuned {path}", skip=self.checkpoint_skips(state)
        )
