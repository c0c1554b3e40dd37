"""Typed settings of the `syncmask_fashion` model: one dataclass per concern, filled from the
model yaml. Unknown keys are an error that lists the valid ones, so a typo in a run config
cannot silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lavis_syncmask.common.keys import reject_unknown
from lavis_syncmask.sampling.settings import SIM_UPPER

# Keys LAVIS itself puts into every model config; they are not architecture settings.
LAVIS_KEYS = frozenset(
    {"arch", "model_type", "load_pretrained", "load_finetuned", "finetuned", "preprocess"}
)


@dataclass(frozen=True)
class BackboneConfig:
    image_size: int = 256  # input resolution; FashionGen images are 256 px
    patch_size: int = 16
    vision_width: int = 768  # ViT-B/16
    vision_depth: int = 12
    vision_heads: int = 12
    vit_drop_path_rate: float = 0.0
    vit_grad_ckpt: bool = False
    text_width: int = 768  # BERT-base
    text_layers: int = 6  # unimodal text layers (BERT 0-5)
    fusion_layers: int = 6  # layers with cross-attention (BERT 6-11)
    text_heads: int = 12
    text_intermediate: int = 3072
    max_txt_len: int = 60
    embed_dim: int = 256  # ITC projection size
    tokenizer: str = "bert-base-uncased"  # HF name (local cache only) or folder / vocab.txt


@dataclass(frozen=True)
class InitConfig:
    pretrained: str | None = None  # ALBEF checkpoint (.pth): URL (cached once) or local file
    vit_init: str | None = None  # DeiT-B/16 checkpoint (URL or file), when `pretrained` is unset
    bert_init: str | None = None  # HF name in the local cache or folder, e.g. bert-base-uncased


@dataclass(frozen=True)
class ObjectiveConfig:
    temp: float = 0.07  # ITC temperature (clamped to [0.001, 0.5] as in ALBEF)
    learn_temp: bool = True  # False: the temperature stays at `temp` (the tiny recipe)
    queue_size: int = 65536
    momentum: float = 0.995
    alpha: float = 0.4  # momentum distillation weight
    # Epochs over which alpha ramps up linearly from 0, as LAVIS's ALBEF / BLIP pretraining
    # (2 there); 0 keeps it constant from the first step.
    alpha_ramp_epochs: float = 0.0
    # False: same-product / same-text pairs are plain negatives (ITC targets the diagonal only,
    # ITM may draw them as hard negatives), as LAVIS's ALBEF pretraining treats them.
    false_negatives: bool = True
    itc_weight: float = 1.0
    itm_weight: float = 1.0
    mlm_weight: float = 1.0
    mim_weight: float = 1.0
    use_mim: bool = True
    mlm_distill: bool = True  # distil the teacher's MLM logits, as ALBEF
    mim_decoder_layers: int = 2
    mim_decoder_dim: int = 512
    mim_decoder_heads: int = 8
    mim_drop_masked: bool = False  # MAE-style: the student ViT sees visible patches only
    mim_norm_pix: bool = True  # per-patch normalised pixel targets (MAE)
    k_test: int = 128  # ITM re-ranking depth in compute_sim_matrix
    # Texts at least this similar (batch `text_similarity`) are never ITM negatives of each
    # other; the batch sampler's `sim_upper` default, so both apply one rule (method.md §4).
    near_duplicate_sim: float = SIM_UPPER


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class SyncMaskModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    init: InitConfig = field(default_factory=InitConfig)
    objectives: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    masking: dict[str, Any] = field(default_factory=dict)  # MaskingConfig keys
    sync_layers: tuple[int, ...] | None = None  # fusion layers (0-based) averaged; None = all

    @classmethod
    def valid_keys(cls) -> set[str]:
        from lavis_syncmask.masking import MaskingConfig

        keys = {"sync_layers"}
        for sub in (BackboneConfig, InitConfig, ObjectiveConfig, MaskingConfig):
            keys |= {f.name for f in dataclasses.fields(sub)}
        return keys

    @classmethod
    def from_dict(
        cls, cfg: Mapping[str, Any], extra_keys: frozenset[str] = frozenset()
    ) -> SyncMaskModelConfig:
        """Flat model config (as in the yaml) -> typed config; unknown keys raise. A head
        (classifier, composed retrieval) reads its own `extra_keys` itself."""
        from lavis_syncmask.masking import MaskingConfig

        values = {k: v for k, v in dict(cfg).items() if k not in LAVIS_KEYS | extra_keys}
        if "mask_strategy" in values:  # the name the issues use for `strategy`
            values["strategy"] = values.pop("mask_strategy")
        valid = cls.valid_keys() | extra_keys
        reject_unknown("model", values, valid, where="the syncmask_fashion model config")
        masking_names = {f.name for f in dataclasses.fields(MaskingConfig)}
        masking = {k: v for k, v in values.items() if k in masking_names}
        layers = values.get("sync_layers")
        return cls(
            backbone=_build(BackboneConfig, values),
            init=_build(InitConfig, values),
            objectives=_build(ObjectiveConfig, values),
            masking=masking,
            sync_layers=tuple(int(i) for i in layers) if layers is not None else None,
        )
