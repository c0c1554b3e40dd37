"""Downstream heads on the pretrained `syncmask_fashion` encoders (benchmarks-and-data.md):

- `syncmask_fashion_cls`: category / subcategory recognition, a classifier on the fused [CLS]
  of image + text, fine-tuned end to end;
- `syncmask_fashion_tgir`: FashionIQ text-guided image retrieval, reference image + modification
  text -> fusion encoder -> projection, target image -> image projection, in-batch contrastive.

Both reuse the pretraining model's encoders and weights (`init_from` loads the matching keys of
a pretrain checkpoint); the momentum teacher stays idle and the MIM decoder is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from omegaconf import OmegaConf
from torch import nn
from transformers.modeling_outputs import ModelOutput

from lavis_syncmask.common.paths import config_path
from lavis_syncmask.common.precision import full_precision
from lavis_syncmask.data.tokenizer import resolve_tokenizer
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.models.config import SyncMaskModelConfig
from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

HEAD_KEYS = frozenset({"num_classes", "init_from"})


@dataclass
class HeadOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def _build_head_model(cls: type, cfg: Any, **kwargs: Any) -> Any:
    # A head's yaml names only what differs from the pretraining preset of the same size.
    preset = OmegaConf.load(SyncMaskFashion.default_config_path(cfg.get("model_type", "base")))
    cfg = OmegaConf.merge(preset.model, cfg)
    config = SyncMaskModelConfig.from_dict(cfg, extra_keys=HEAD_KEYS)
    model = cls(config, resolve_tokenizer(config.backbone.tokenizer), **kwargs)
    init_from = cfg.get("init_from")
    if init_from:  # a pretrain checkpoint: the head itself starts from scratch
        state = torch.load(init_from, map_location="cpu", weights_only=True)
        state = state.get("model", state)
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(state, strict=False)
    if cfg.get("load_finetuned", False) and cfg.get("finetuned"):
        model.load_checkpoint(cfg.finetuned)
    return model


@registry.register_model("syncmask_fashion_cls")
class SyncMaskClassifier(SyncMaskFashion):
    PRETRAINED_MODEL_CONFIG_DICT = {
        "base": config_path("models", "syncmask_fashion_cls_base.yaml"),
        "tiny": config_path("models", "syncmask_fashion_cls_tiny.yaml"),
    }

    def __init__(self, config: SyncMaskModelConfig, tokenizer: Any, num_classes: int) -> None:
        super().__init__(config, tokenizer)
        width = config.backbone.text_width
        self.cls_head = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes)
        )

    @classmethod
    def from_config(cls, cfg: Any) -> SyncMaskClassifier:
        if not cfg.get("num_classes"):
            raise ValueError("syncmask_fashion_cls needs `num_classes` (set by its task)")
        return _build_head_model(cls, cfg, num_classes=int(cfg.num_classes))

    def predict_logits(self, samples: dict[str, Any]) -> torch.Tensor:
        """Class logits `(B, C)` from the fused [CLS] of image + text."""
        tok = self.tokenize(list(samples["text_input"]))
        image_embeds = encode_image(self.visual_encoder, samples["image"].to(self.device))
        text = self.encode_text(tok.input_ids, tok.attention_mask).last_hidden_state
        return self.cls_head(self.fuse(text, tok.attention_mask, image_embeds)[:, 0])

    def forward(self, samples: dict[str, Any]) -> HeadOutput:
        logits = self.predict_logits(samples)
        loss = F.cross_entropy(logits, samples["label"].to(self.device).long())
        return HeadOutput(loss=loss, logits=logits)


@registry.register_model("syncmask_fashion_tgir")
class SyncMaskComposedRetrieval(SyncMaskFashion):
    PRETRAINED_MODEL_CONFIG_DICT = {
        "base": config_path("models", "syncmask_fashion_tgir_base.yaml"),
        "tiny": config_path("models", "syncmask_fashion_tgir_tiny.yaml"),
    }

    def __init__(self, config: SyncMaskModelConfig, tokenizer: Any) -> None:
        super().__init__(config, tokenizer)
        self.composed_proj = nn.Linear(config.backbone.text_width, config.backbone.embed_dim)

    @classmethod
    def from_config(cls, cfg: Any) -> SyncMaskComposedRetrieval:
        return _build_head_model(cls, cfg)

    def query_features(self, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """`(B, D)` normalised features of (reference image, modification text) queries."""
        tok = self.tokenize(list(texts))
        image_embeds = encode_image(self.visual_encoder, images.to(self.device))
        text = self.encode_text(tok.input_ids, tok.attention_mask).last_hidden_state
        fused = self.fuse(text, tok.attention_mask, image_embeds)[:, 0]
        return F.normalize(self.composed_proj(fused), dim=-1)

    def target_features(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, D)` normalised ITC image features of gallery / target images."""
        tokens = encode_image(self.visual_encoder, images.to(self.device))
        return F.normalize(self.vision_proj(tokens[:, 0]), dim=-1)

    def forward(self, samples: dict[str, Any]) -> HeadOutput:
        query = self.query_features(samples["reference_image"], samples["text_input"])
        target = self.target_features(samples["target_image"])
        with full_precision(self.device):  # fp32 logits under autocast, as for ITC
            logits = query.float() @ target.float().T / self.temp.clamp(0.001, 0.5)
        # Several triplets of one batch can share a target image: all of them are positives.
        ids = samples.get("target_id")
        if ids is not None:
            same = torch.tensor([[a == b for b in ids] for a in ids], device=self.device)
        else:
            same = torch.eye(len(query), dtype=torch.bool, device=self.device)
        targets = same.float() / same.float().sum(1, keepdim=True)
        loss = -(F.log_softmax(logits, dim=1) * targets).sum(1).mean()
        return HeadOutput(loss=loss, logits=logits)
