"""Downstream heads on the pretrained `syncmask_fashion` encoders (benchmarks-and-data.md):

- `syncmask_fashion_cls`: category / subcategory recognition, a classifier on the fused [CLS]
  of image + text, fine-tuned end to end;
- `syncmask_fashion_tgir`: FashionIQ text-guided image retrieval, reference image + modification
  text -> fusion encoder -> projection, target image -> image projection, in-batch contrastive.

Both hold only the encoders they use (`FusionEncoders`: ViT + BERT with fusion layers) and
their own layers, not the pretraining model: no momentum encoders, no queue, no MIM decoder, so
fine-tuning pays for none of them. `init_from` loads a pretraining checkpoint's encoders (and,
for TGIR, its image projection and temperature); every key it drops is named in the log with
the reason (`PRETRAINING_ONLY`), and any other mismatch is an error.
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

from lavis_syncmask.common.checkpoint import LoadReport, load_checkpoint, load_weights, model_state
from lavis_syncmask.common.keys import Range, check_range, coerce
from lavis_syncmask.common.paths import config_path
from lavis_syncmask.common.precision import full_precision
from lavis_syncmask.data.tokenizer import resolve_tokenizer
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.models.config import SyncMaskModelConfig
from lavis_syncmask.models.encoders import FusionEncoders
from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

HEAD_KEYS = frozenset({"num_classes", "init_from"})
#: Why a head drops each part of a pretraining checkpoint (key prefix -> reason).
PRETRAINING_ONLY: dict[str, str] = {
    "visual_encoder_m.": "momentum encoder: not used by the head",
    "text_encoder_m.": "momentum encoder: not used by the head",
    "vision_proj_m.": "momentum projection: not used by the head",
    "text_proj_m.": "momentum projection: not used by the head",
    "queue.": "ITC queue: pretraining only",
    "mim_decoder.": "MIM decoder: pretraining only",
    "mim_mask_token": "MIM mask token: pretraining only",
    "global_step": "pretraining step counter",
    "itm_head.": "ITM head: not used by the head",
    "text_proj.": "text ITC projection: not used by the head",
    "vision_proj.": "image ITC projection: not used by this head",
    "temp": "ITC temperature: not used by this head",
    "text_encoder.cls.": "MLM prediction head: not used by the head",
}


@dataclass
class HeadOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def head_config(cfg: Any) -> SyncMaskModelConfig:
    # A head's yaml names only what differs from the pretraining preset of the same size.
    preset = OmegaConf.load(SyncMaskFashion.default_config_path(cfg.get("model_type", "base")))
    num_classes = coerce("model.num_classes", cfg.get("num_classes"), int | None)
    if num_classes is not None:
        check_range("model.num_classes", num_classes, Range(1))
    coerce("model.init_from", cfg.get("init_from"), str | None)
    return SyncMaskModelConfig.from_dict(OmegaConf.merge(preset.model, cfg), extra_keys=HEAD_KEYS)


class _Head(FusionEncoders):
    """A downstream head: the two encoders, its own layers, nothing of pretraining."""

    def __init__(self, config: SyncMaskModelConfig, tokenizer: Any) -> None:
        super().__init__(config.backbone, tokenizer)
        self.config = config
        # Heads read the encoder's hidden states only: the MLM prediction layers would be
        # parameters without gradients (and DDP refuses those without find_unused_parameters).
        del self.text_encoder.cls

    def pretraining_skips(self, state: dict[str, torch.Tensor]) -> dict[str, str]:
        """Reasons for each key of a pretraining checkpoint the head does not hold."""
        own = self.state_dict()
        skips = {}
        for key in state:
            if key in own:
                continue
            why = [r for prefix, r in PRETRAINING_ONLY.items() if key.startswith(prefix)]
            if why:
                skips[key] = why[0]
        return skips

    def init_from_pretraining(self, path: str) -> LoadReport:
        """Encoders (and shared layers) from a `syncmask_fashion` checkpoint; each key the
        head drops and each head layer left at its initial value is named in the log."""
        state = model_state(load_checkpoint(path, "model.init_from"))
        new = {k: "head layer: trained from scratch" for k in self.head_keys() if k not in state}
        return load_weights(
            self, state, f"model.init_from {path}", skip=self.pretraining_skips(state),
            allow_missing=new,
        )  # fmt: skip

    def head_keys(self) -> list[str]:
        """State keys of the head's own layers (not in a pretraining checkpoint)."""
        return [k for k in self.state_dict() if not k.startswith(("visual_", "text_encoder."))]

    @classmethod
    def _finish(cls, model: _Head, cfg: Any) -> _Head:
        if cfg.get("init_from"):  # a pretrain checkpoint: the head itself starts from scratch
            model.init_from_pretraining(str(cfg.init_from))
        if cfg.get("load_finetuned", False) and cfg.get("finetuned"):
            model.load_checkpoint(cfg.finetuned)
        return model


@registry.register_model("syncmask_fashion_cls")
class SyncMaskClassifier(_Head):
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
        config = head_config(cfg)
        model = cls(config, resolve_tokenizer(config.backbone.tokenizer), int(cfg.num_classes))
        return cls._finish(model, cfg)

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
class SyncMaskComposedRetrieval(_Head):
    PRETRAINED_MODEL_CONFIG_DICT = {
        "base": config_path("models", "syncmask_fashion_tgir_base.yaml"),
        "tiny": config_path("models", "syncmask_fashion_tgir_tiny.yaml"),
    }

    def __init__(self, config: SyncMaskModelConfig, tokenizer: Any) -> None:
        super().__init__(config, tokenizer)
        bb = config.backbone
        # Target side: the pretrained image ITC projection and temperature carry over.
        self.vision_proj = nn.Linear(bb.vision_width, bb.embed_dim)
        self.temp = nn.Parameter(torch.tensor(config.objectives.temp))
        self.composed_proj = nn.Linear(bb.text_width, bb.embed_dim)

    @classmethod
    def from_config(cls, cfg: Any) -> SyncMaskComposedRetrieval:
        config = head_config(cfg)
        return cls._finish(cls(config, resolve_tokenizer(config.backbone.tokenizer)), cfg)

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
