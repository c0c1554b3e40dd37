"""Shared builders for tests that need a tiny `syncmask_fashion` (imported by test modules)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from lavis_syncmask.common.paths import config_path
from lavis_syncmask.data.tokenizer import train_wordpiece

COLOURS = ["red", "navy", "black", "white", "green", "beige", "pink", "grey"]
GARMENTS = ["shirt", "dress", "jacket", "skirt", "sweater", "trousers"]
DETAILS = [
    "long sleeves",
    "short sleeves",
    "a zip closure at back",
    "two patch pockets",
    "a logo print at front",
    "a spread collar",
    "striped pattern",
]


def fashion_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(COLOURS)} {rng.choice(GARMENTS)} with {rng.choice(DETAILS)} and "
        f"{rng.choice(DETAILS)}. the fabric is soft."
        for _ in range(n)
    ]


def write_vocab(folder: Path) -> Path:
    train_wordpiece(fashion_texts(400), folder, vocab_size=300)
    return folder


def tiny_config(vocab_dir: Path, **overrides: Any) -> Any:
    cfg = OmegaConf.load(config_path("models", "syncmask_fashion_tiny.yaml")).model
    cfg.tokenizer = str(vocab_dir)
    cfg.image_size = 64
    cfg.queue_size = 64
    cfg.sync_warmup_steps = 0
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def batch(n: int = 8, seed: int = 0, image_size: int = 64) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(n, 3, image_size, image_size, generator=gen),
        "text_input": fashion_texts(n, seed),
        "product_id": torch.arange(n) // 2,  # two views per product
        "text_id": torch.arange(n) // 2,
    }
