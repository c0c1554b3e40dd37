"""A `syncmask_fashion` model for search, rebuilt from a checkpoint: the model section of the
resolved run config the runner stores in every checkpoint (a bare state dict needs
``model_type``), with every initialisation source switched off (the checkpoint's weights are
loaded strictly over it, so nothing is fetched), and its eval processors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lavis.common.registry import registry
from lavis.processors.blip_processors import BlipImageEvalProcessor
from omegaconf import OmegaConf

from lavis_syncmask.common.checkpoint import load_checkpoint, model_state
from lavis_syncmask.data.processors import SyncMaskTextProcessor

#: Model keys set before building: no initialisation source (nothing is fetched), and the
#: weights count as fine-tuned ones, loaded strictly from the checkpoint right after.
_INIT_KEYS = {
    "pretrained": None, "vit_init": None, "bert_init": None, "load_finetuned": True,
    "finetuned": None,
}  # fmt: skip


@dataclass
class SearchModel:
    model: Any
    vis_processor: Any
    text_processor: Any
    checkpoint: Path
    model_type: str


def model_config(checkpoint: dict[str, Any], model_type: str | None, source: str) -> Any:
    """The checkpoint's model config, or the ``model_type`` preset for a bare state dict."""
    import lavis_syncmask  # noqa: F401  (registers syncmask_fashion)

    if isinstance(checkpoint.get("config"), str):
        cfg = OmegaConf.create(checkpoint["config"]).model
        if model_type and model_type != cfg.get("model_type"):
            raise ValueError(
                f"--model-type {model_type} but {source} was trained as {cfg.get('model_type')}"
            )
    elif model_type:
        cls = registry.get_model_class("syncmask_fashion")
        cfg = OmegaConf.load(cls.default_config_path(model_type)).model
    else:
        raise ValueError(f"{source} holds no run config; give --model-type (tiny | base)")
    cfg.update(_INIT_KEYS)
    return cfg


def load_search_model(
    checkpoint: str | os.PathLike[str], model_type: str | None = None, device: str = "cpu"
) -> SearchModel:
    """Model in eval mode on ``device`` plus its eval image and text processors."""
    path = Path(checkpoint).expanduser().resolve()
    payload = load_checkpoint(path, "--checkpoint")
    cfg = model_config(payload, model_type, str(path))
    model = registry.get_model_class(cfg.arch).from_config(cfg)
    model.load_state_dict(model_state(payload), strict=True)
    model = model.to(torch.device(device)).eval()
    size = int(model.config.backbone.image_size)
    vis = BlipImageEvalProcessor(image_size=size)
    return SearchModel(model, vis, SyncMaskTextProcessor(), path, str(cfg.get("model_type")))
