"""Compare masking strategies on the same trained teacher (method.md §5): the teacher's
cross-attention is computed once per batch, then each masking config picks its words and
patches from it, and the sync-precision statistics of each are returned side by side."""

from __future__ import annotations

from typing import Any

import torch

from lavis_syncmask.masking import (
    MaskingConfig,
    mask_statistics,
    synchronized_masks,
    word_units,
)
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.models.grounding import described_patch_grid, visible_tokens


def mask_stats(
    model: Any, samples: dict[str, Any], tok: Any, masks: Any, units: Any, attention: Any
) -> dict[str, float]:
    """Logging statistics of one batch's masks; the visibility fields of the synthetic
    catalogue, when the batch carries them, add word / patch sync precision."""
    token_visible = described = None
    if "visible_spans" in samples:
        token_visible = visible_tokens(tok.offset_mapping, samples["visible_spans"])
    if "described_patches" in samples:
        described = described_patch_grid(samples["described_patches"], model.grid)
        described = described.to(model.device).flatten(1)
    content = (
        word_units(tok.input_ids, tok.attention_mask, model.token_tables(), True).word_ids >= 0
    )
    return mask_statistics(
        masks,
        units,
        attention,
        token_visible=token_visible,
        described_patches=described,
        content_token=content,
    )


@torch.no_grad()
def compare_masking(
    model: Any, samples: dict[str, Any], configs: dict[str, MaskingConfig]
) -> dict[str, dict[str, float]]:
    """Mask statistics of each config in `configs` on one batch, with `model`'s teacher as it
    is now (no EMA update; every config is evaluated past its warm-up).

    >>> compare_masking(model, batch, {"syncmask": cfg, "random": random_cfg})  # doctest: +SKIP
    {'syncmask': {'word_sync_precision': ...}, 'random': {...}}
    """
    tok = model.tokenize(list(samples["text_input"]), offsets="visible_spans" in samples)
    image_embeds_m = encode_image(model.visual_encoder_m, samples["image"].to(model.device))
    text_m = model.encode_text(tok.input_ids, tok.attention_mask, momentum=True)
    attention = model.teacher_attention(
        text_m.last_hidden_state, tok.attention_mask, image_embeds_m
    )
    results = {}
    for name, config in configs.items():
        tables = model.token_tables()
        units = word_units(tok.input_ids, tok.attention_mask, tables, config.sync_word_filter)
        masks = synchronized_masks(
            attention, units, model.grid**2, config, step=config.sync_warmup_steps
        )
        results[name] = mask_stats(model, samples, tok, masks, units, attention)
    return results
