"""Build LAVIS's ALBEF / BLIP offline (`build_baseline`) and load local weights into them.

Two ways to size them:
- `size_preset: tiny | base` takes the encoder sizes of that `syncmask_fashion` preset (the
  benchmark's same-size comparison): LAVIS's `VisionTransformerEncoder`, `BertForMaskedLM`,
  `XBertEncoder` and `XBertLMHeadDecoder` built directly at those sizes;
- `size_preset: null` keeps LAVIS's own sizes from its config (`vit_type`,
  `med_config_path`), through LAVIS's `from_config` with `from_pretrained=False` (no download).
Weights come only from local files (`finetuned` with `load_finetuned`, else `pretrained` with
`load_pretrained`); a URL is an error that says what to download.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lavis.common.utils import get_abs_path, is_url
from lavis.models.med import BertConfig, BertForMaskedLM, XBertEncoder, XBertLMHeadDecoder
from lavis.models.vit import VisionTransformerEncoder, interpolate_pos_embed
from omegaconf import OmegaConf
from torch import nn

from lavis_syncmask.baselines.models import (
    OfflineAlbefPretrain,
    OfflineAlbefRetrieval,
    OfflineBlipPretrain,
    OfflineBlipRetrieval,
)
from lavis_syncmask.common.keys import Range, check_fields
from lavis_syncmask.common.paths import config_path
from lavis_syncmask.data.tokenizer import resolve_tokenizer
from lavis_syncmask.models.backbones import bert_config, build_vision_encoder
from lavis_syncmask.models.config import LAVIS_KEYS, RANGES, BackboneConfig

BASELINE_ARCHS: dict[str, type] = {
    "albef_pretrain": OfflineAlbefPretrain,
    "albef_retrieval": OfflineAlbefRetrieval,
    "blip_pretrain": OfflineBlipPretrain,
    "blip_retrieval": OfflineBlipRetrieval,
}
# Keys of LAVIS's own ALBEF / BLIP yamls that this builder reads or may safely ignore
# (`vit_*` and `med_config_path` size the encoders when no `size_preset` is set).
LAVIS_MODEL_KEYS = frozenset(
    {
        "pretrained",
        "load_pretrained",
        "vit_type",
        "image_size",
        "vit_ckpt_layer",
        "vit_drop_path_rate",
        "vit_layer_norm_epsilon",
        "vit_grad_ckpt",
        "med_config_path",
        "use_distill",
        "negative_all_rank",
        "k_test",
        "prompt",
    }
)
#: The keys shared with `syncmask_fashion` take its ranges (LAVIS's ALBEF / BLIP clamp the
#: temperature to the same [0.001, 0.5]).
BASELINE_RANGES: dict[str, Range] = {
    **{
        k: RANGES[k]
        for k in ("queue_size", "embed_dim", "max_txt_len", "momentum", "temp", "alpha")
    },
    "mlm_mask_prob": Range(0, 1, low_open=True, why="share of words masked for MLM"),
}
BLIP_SPECIAL_TOKENS = {"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineConfig:
    arch: str  # one of BASELINE_ARCHS
    size_preset: str | None = "tiny"  # syncmask_fashion preset whose sizes to use; None: LAVIS's
    tokenizer: str | None = None  # HF name (local cache) or folder; None: the preset's
    queue_size: int = 256
    embed_dim: int = 256  # used only without a size preset (a preset sets its own)
    max_txt_len: int = 30  # idem
    momentum: float = 0.995
    alpha: float = 0.4
    temp: float = 0.07
    learn_temp: bool = True  # False: the ITC temperature stays at its initial value
    mlm_mask_prob: float = 0.15  # ALBEF pretraining only
    weights: str | None = None  # local checkpoint to load (finetuned, else pretrained)

    def __post_init__(self) -> None:
        check_fields(self, "model", BASELINE_RANGES)

    @classmethod
    def valid_keys(cls) -> set[str]:
        own = {f.name for f in dataclasses.fields(cls)} - {"weights"}
        return own | set(LAVIS_KEYS) | set(LAVIS_MODEL_KEYS) | {"finetuned"}

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> BaselineConfig:
        """Model config (LAVIS's keys plus `size_preset` / `tokenizer`) -> typed; unknown keys
        raise, naming the valid ones."""
        values = dict(cfg)
        unknown = sorted(set(values) - cls.valid_keys())
        if unknown:
            raise ValueError(
                f"unknown baseline model config keys {unknown}; valid: {sorted(cls.valid_keys())}"
            )
        if values.get("arch") not in BASELINE_ARCHS:
            raise ValueError(f"model.arch must be one of {sorted(BASELINE_ARCHS)}")
        weights = None
        if values.get("load_finetuned") and values.get("finetuned"):
            weights = values["finetuned"]
        elif values.get("load_pretrained") and values.get("pretrained"):
            weights = values["pretrained"]
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names and k != "weights"}
        return cls(**kept, weights=str(weights) if weights else None)


def preset_backbone(preset: str) -> BackboneConfig:
    """The encoder sizes of the `syncmask_fashion` preset `preset` (tiny | base)."""
    model = OmegaConf.to_container(
        OmegaConf.load(config_path("models", f"syncmask_fashion_{preset}.yaml")).model
    )
    names = {f.name for f in dataclasses.fields(BackboneConfig)}
    return BackboneConfig(**{k: v for k, v in model.items() if k in names})


def _tokenizer(cfg: BaselineConfig, default: str, blip: bool) -> Any:
    tokenizer = resolve_tokenizer(cfg.tokenizer or default)
    if blip:  # what LAVIS's BlipBase.init_tokenizer adds to bert-base-uncased
        tokenizer.add_special_tokens(BLIP_SPECIAL_TOKENS)
        tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
    return tokenizer


def _text_parts(arch: str, config: BertConfig) -> dict[str, nn.Module]:
    """The text side each LAVIS class expects: ALBEF pretraining an MLM BERT, the others an
    `XBertEncoder`, BLIP pretraining also its captioning decoder."""
    parts: dict[str, nn.Module] = {}
    if arch == "albef_pretrain":
        parts["text_encoder"] = BertForMaskedLM(config)
    else:
        parts["text_encoder"] = XBertEncoder(config, add_pooling_layer=False)
    if arch == "blip_pretrain":
        parts["text_decoder"] = XBertLMHeadDecoder(config)
    return parts


def _preset_encoders(arch: str, bb: BackboneConfig, vocab: int) -> dict[str, nn.Module]:
    config = bert_config(bb, vocab)
    if arch.startswith("blip"):
        # LAVIS's med code reads a missing `fusion_layer` as BLIP: cross-attention everywhere.
        del config.fusion_layer
    return {"image_encoder": build_vision_encoder(bb), **_text_parts(arch, config)}


def _lavis_encoders(arch: str, raw: Mapping[str, Any]) -> dict[str, nn.Module]:
    parts: dict[str, nn.Module] = {
        "image_encoder": VisionTransformerEncoder.from_config(raw, from_pretrained=False)
    }
    config = BertConfig.from_json_file(get_abs_path(raw["med_config_path"]))
    if arch == "albef_pretrain":
        config.fusion_layer = 6  # as LAVIS's AlbefPretrain.from_config
    return {**parts, **_text_parts(arch, config)}


def _constructor_kwargs(cfg: BaselineConfig, embed_dim: int, max_txt_len: int) -> dict:
    kwargs: dict[str, Any] = {
        "queue_size": cfg.queue_size,
        "embed_dim": embed_dim,
        "momentum": cfg.momentum,
        "alpha": cfg.alpha,
        "max_txt_len": max_txt_len,
    }
    if cfg.arch.startswith("albef"):
        kwargs["temp"] = cfg.temp  # BLIP fixes its initial temperature at 0.07 itself
    if cfg.arch == "albef_pretrain":
        kwargs["mlm_mask_prob"] = cfg.mlm_mask_prob
    return kwargs


def build_baseline(raw_cfg: Mapping[str, Any]) -> nn.Module:
    """LAVIS's ALBEF / BLIP class named by `arch`, built offline and loaded from local weights.

    >>> model = build_baseline({"arch": "albef_pretrain", "size_preset": "tiny",
    ...                         "tokenizer": "data/synthetic/vocab"})  # doctest: +SKIP
    """
    raw = dict(raw_cfg)
    cfg = BaselineConfig.from_dict(raw)
    blip = cfg.arch.startswith("blip")
    if cfg.size_preset:
        bb = preset_backbone(cfg.size_preset)
        if raw.get("image_size"):
            bb = dataclasses.replace(bb, image_size=int(raw["image_size"]))
        tokenizer = _tokenizer(cfg, bb.tokenizer, blip)
        parts = _preset_encoders(cfg.arch, bb, len(tokenizer))
        embed_dim, max_txt_len = bb.embed_dim, bb.max_txt_len
    else:
        tokenizer = _tokenizer(cfg, "bert-base-uncased", blip)
        parts = _lavis_encoders(cfg.arch, raw)
        embed_dim, max_txt_len = cfg.embed_dim, cfg.max_txt_len
    model_cls = BASELINE_ARCHS[cfg.arch]
    # BLIP's weight tying prints one line per tied module; keep logs readable.
    with contextlib.redirect_stdout(io.StringIO()):
        model = model_cls(
            **parts, **_constructor_kwargs(cfg, embed_dim, max_txt_len), tokenizer=tokenizer
        )
    if hasattr(model, "reset_queue_ptr"):
        model.reset_queue_ptr()  # as LAVIS's BLIP from_config
    model.temp.requires_grad_(cfg.learn_temp)  # every LAVIS class here names it `temp`
    if cfg.weights:
        load_local_weights(model, cfg.weights)
    else:
        logger.warning("%s starts from random weights (no local checkpoint set)", cfg.arch)
    return model


def load_local_weights(model: nn.Module, path: str) -> list[str]:
    """Load a local checkpoint (runner checkpoint, LAVIS / ALBEF / BLIP release, or state
    dict): position embeddings resized to the model's image size, `text_encoder.bert.*` keys
    renamed when the model's text encoder has no `.bert` (as LAVIS's `load_from_pretrained`),
    keys of another shape dropped. Returns the model keys left at initialisation."""
    if is_url(path):
        raise ValueError(
            f"model.finetuned / model.pretrained is a URL ({path}); nothing is downloaded. "
            "Download it on a machine with internet and set the local path."
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint {file} not found (model.finetuned / pretrained)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    state = dict(state.get("model", state))
    own = model.state_dict()
    for key in ("visual_encoder.pos_embed", "visual_encoder_m.pos_embed"):
        if key in state and key in own:
            state[key] = interpolate_pos_embed(state[key], model.visual_encoder)
    if not any(".bert." in key for key in own):
        state = {key.replace("bert.", ""): value for key, value in state.items()}
    dropped = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    state = {k: v for k, v in state.items() if k in own and k not in dropped}
    if not state:
        raise ValueError(f"{file}: no parameter matches {type(model).__name__}")
    result = model.load_state_dict(state, strict=False)
    if dropped or result.missing_keys:
        logger.warning(
            "%s: %d keys of another shape dropped %s, %d left at initialisation %s",
            file,
            len(dropped),
            dropped[:5],
            len(result.missing_keys),
            result.missing_keys[:5],
        )
    return list(result.missing_keys)
