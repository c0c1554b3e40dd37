"""Typed settings of the `syncmask_fashion` model: one dataclass per concern, filled from the
model yaml. Unknown keys are an error that lists the valid ones, so a typo in a run config
cannot silently fall back to a default; every value is checked against its type and, for a
number, its range (`RANGES`) when the config is built, and the error names the key, the value
and what is allowed (as `runner/settings.RunSettings` does for `run.*`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from lavis_syncmask.common.keys import Range, check_fields, coerce, reject_unknown
from lavis_syncmask.sampling.settings import SIM_UPPER

# Keys LAVIS itself puts into every model config; they are not architecture settings.
LAVIS_KEYS = frozenset(
    {"arch", "model_type", "load_pretrained", "load_finetuned", "finetuned", "preprocess"}
)
#: Types of the LAVIS keys this plugin reads (`load_finetuned: "False"` would be true).
LAVIS_KEY_TYPES: dict[str, Any] = {
    "arch": str,
    "model_type": str,
    "load_pretrained": bool,
    "load_finetuned": bool,
    "finetuned": str | None,
}

_POSITIVE = Range(1)
_UNIT_OPEN_HIGH = Range(0, 1, high_open=True)
_WEIGHT = Range(0, why="a loss weight; 0 turns the term off")
#: The allowed range of every numeric model key (the masking ones: `masking/config.py`).
RANGES: dict[str, Range] = {
    **dict.fromkeys(
        ("image_size", "patch_size", "vision_width", "vision_depth", "vision_heads"), _POSITIVE
    ),
    **dict.fromkeys(
        ("text_width", "text_layers", "fusion_layers", "text_heads", "text_intermediate"),
        _POSITIVE,
    ),
    "max_txt_len": _POSITIVE,
    "embed_dim": _POSITIVE,
    "vit_drop_path_rate": _UNIT_OPEN_HIGH,
    # The model clamps the learnt temperature to ALBEF's [0.001, 0.5] before every step, so a
    # value outside would silently become the nearest end (-0.5 trained at 0.001).
    "temp": Range(0.001, 0.5, why="the model clamps the ITC temperature to this range"),
    "queue_size": Range(1, why="and a multiple of the global batch size"),
    "momentum": Range(0, 1, high_open=True, why="EMA factor: 1 would never update the teacher"),
    "alpha": Range(0, 1, why="share of the momentum-distillation target"),
    "alpha_ramp_epochs": Range(0, why="epochs over which alpha ramps up from 0; 0: constant"),
    **dict.fromkeys(("itc_weight", "itm_weight", "mlm_weight", "mim_weight"), _WEIGHT),
    **dict.fromkeys(("mim_decoder_layers", "mim_decoder_dim", "mim_decoder_heads"), _POSITIVE),
    "k_test": _POSITIVE,
    # `text_similarity` is a TF-IDF cosine, never below 0: a threshold <= 0 would make every
    # pair a near-duplicate and leave ITM without a single negative (method.md section 4).
    "near_duplicate_sim": Range(
        0, 1, low_open=True, why="TF-IDF cosine; <= 0 marks every pair a near-duplicate"
    ),
}


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

    def __post_init__(self) -> None:
        check_fields(self, "model", RANGES)
        if self.image_size % self.patch_size:
            raise ValueError(
                f"model.image_size={self.image_size} must be a multiple of "
                f"model.patch_size={self.patch_size}"
            )
        for width, heads in (("vision_width", "vision_heads"), ("text_width", "text_heads")):
            _check_divisible(self, width, heads)


@dataclass(frozen=True)
class InitConfig:
    pretrained: str | None = None  # ALBEF checkpoint (.pth): URL (cached once) or local file
    vit_init: str | None = None  # DeiT-B/16 checkpoint (URL or file), when `pretrained` is unset
    bert_init: str | None = None  # HF name in the local cache or folder, e.g. bert-base-uncased

    def __post_init__(self) -> None:
        check_fields(self, "model", RANGES)


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

    def __post_init__(self) -> None:
        check_fields(self, "model", RANGES)
        _check_divisible(self, "mim_decoder_dim", "mim_decoder_heads")


def _check_divisible(config: Any, width: str, heads: str) -> None:
    """Attention splits a width into equal heads; torch's own error names neither key."""
    if getattr(config, width) % getattr(config, heads):
        raise ValueError(
            f"model.{width}={getattr(config, width)} must be a multiple of "
            f"model.{heads}={getattr(config, heads)}"
        )


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
        """Flat model config (as in the yaml) -> typed config; an unknown key, a value of the
        wrong type or out of its range raises ValueError naming the key. A head (classifier,
        composed retrieval) reads its own `extra_keys` itself."""
        from lavis_syncmask.masking import MaskingConfig

        plain = _plain(cfg)
        for key, hint in LAVIS_KEY_TYPES.items():
            if key in plain:
                coerce(f"model.{key}", plain[key], hint)
        values = {k: v for k, v in plain.items() if k not in LAVIS_KEYS | extra_keys}
        if "mask_strategy" in values:  # the name the issues use for `strategy`
            values["strategy"] = values.pop("mask_strategy")
        valid = cls.valid_keys() | extra_keys
        reject_unknown("model", values, valid, where="the syncmask_fashion model config")
        masking_names = {f.name for f in dataclasses.fields(MaskingConfig)}
        masking = {k: v for k, v in values.items() if k in masking_names}
        MaskingConfig.from_dict(masking)  # checked now, not when the model is first built
        backbone = _build(BackboneConfig, values)
        return cls(
            backbone=backbone,
            init=_build(InitConfig, values),
            objectives=_build(ObjectiveConfig, values),
            masking=masking,
            sync_layers=_sync_layers(values.get("sync_layers"), backbone.fusion_layers),
        )


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict of plain values: `coerce` takes a list, not an OmegaConf ListConfig."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    return dict(cfg)


def _sync_layers(layers: Any, fusion_layers: int) -> tuple[int, ...] | None:
    """`sync_layers` as a tuple of fusion-layer indices, each in [0, fusion_layers)."""
    typed = coerce("model.sync_layers", layers, tuple[int, ...] | None)
    if typed is None:
        return None
    distinct = len(set(typed)) == len(typed)  # a layer named twice would weigh double
    if not typed or not distinct or any(not 0 <= i < fusion_layers for i in typed):
        raise ValueError(
            f"model.sync_layers={list(typed)} must be a non-empty list of distinct fusion layer "
            f"indices in [0, {fusion_layers}) (model.fusion_layers={fusion_layers}), or null "
            "for all"
        )
    return typed


# ------------------------------------------------ the run config's `model:` section
# The one place that reads (and writes) a LAVIS `Config`'s model section; LAVIS itself hands
# it to the model's `from_config`, which reads it through the typed configs above.
def model_section(cfg: Any) -> dict[str, Any]:
    """A plain copy of the `model:` section of a LAVIS `Config` (or any object with a
    `model_cfg`)."""
    return _plain(cfg.model_cfg)


def model_arch(cfg: Any) -> str:
    """`model.arch` of a LAVIS `Config`."""
    return str(model_section(cfg).get("arch"))


def initial_weights(cfg: Any) -> str | None:
    """The weights file the model of `cfg` loads last when it is built: `finetuned` only when
    `load_finetuned` loads it, else `init_from` / `pretrained`; None when it loads none."""
    model = model_section(cfg)
    finetuned = model.get("finetuned") if model.get("load_finetuned", False) else None
    return finetuned or model.get("init_from") or model.get("pretrained") or None


def set_model_key(cfg: Any, key: str, value: Any) -> None:
    """Write `model.<key>` into a LAVIS `Config` before the model is built (a value known only
    from the data or the launcher), so `from_config` and the saved `config.yaml` both see it."""
    with open_dict(cfg.model_cfg):
        cfg.model_cfg[key] = value


def take_model_key(cfg: Any, key: str) -> Any:
    """Remove `model.<key>` from a LAVIS `Config` and return its value (None when unset): a
    launcher's key that the model config would refuse."""
    with open_dict(cfg.model_cfg):
        return cfg.model_cfg.pop(key, None)
