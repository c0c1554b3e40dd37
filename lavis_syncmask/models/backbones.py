"""The ALBEF-style encoders of `syncmask_fashion`, built from LAVIS's own blocks
(`lavis.models.vit`, `lavis.models.med`), and the two things LAVIS's versions lack for SyncMask:
encoding an image with some patches replaced by a mask token (MIM), and capturing the fusion
layers' cross-attention probabilities without gradients (the teacher's masks, method.md §3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from lavis.models.med import BertConfig, BertForMaskedLM
from lavis.models.vit import VisionTransformerEncoder, interpolate_pos_embed
from torch import nn

from lavis_syncmask.common.checkpoint import load_checkpoint, load_weights, model_state
from lavis_syncmask.common.weights import resolve_weights
from lavis_syncmask.models.config import BackboneConfig, InitConfig


def build_vision_encoder(cfg: BackboneConfig) -> VisionTransformerEncoder:
    if cfg.image_size % cfg.patch_size:
        raise ValueError(f"image_size {cfg.image_size} is not a multiple of {cfg.patch_size}")
    vit = VisionTransformerEncoder(
        img_size=cfg.image_size,
        patch_size=cfg.patch_size,
        embed_dim=cfg.vision_width,
        depth=cfg.vision_depth,
        num_heads=cfg.vision_heads,
        drop_path_rate=cfg.vit_drop_path_rate,
        use_grad_checkpointing=cfg.vit_grad_ckpt,
    )
    vit.vision_width = cfg.vision_width
    return vit


def bert_config(cfg: BackboneConfig, vocab_size: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.text_width,
        num_hidden_layers=cfg.text_layers + cfg.fusion_layers,
        num_attention_heads=cfg.text_heads,
        intermediate_size=cfg.text_intermediate,
        max_position_embeddings=512,
        fusion_layer=cfg.text_layers,
        encoder_width=cfg.vision_width,
        add_cross_attention=True,
        add_type_embeddings=False,
    )


def build_text_encoder(cfg: BackboneConfig, vocab_size: int) -> BertForMaskedLM:
    return BertForMaskedLM(bert_config(cfg, vocab_size))


def encode_image(
    vit: VisionTransformerEncoder,
    images: torch.Tensor,
    patch_mask: torch.Tensor | None = None,
    mask_token: torch.Tensor | None = None,
    drop_masked: bool = False,
) -> torch.Tensor:
    """ViT tokens `(B, 1 + P, D)` of `images` `(B, 3, H, W)`.

    With `patch_mask` `(B, P)` bool, masked patch embeddings are replaced by `mask_token` `(D,)`
    before the position embeddings (BEiT/SimMIM style), or, with `drop_masked`, removed so the
    encoder sees only visible patches (MAE style; every row must mask the same number of
    patches, which SyncMask's exact budget guarantees) and `(B, 1 + P_visible, D)` comes out.
    """
    x = vit.patch_embed(images)
    pos = vit.pos_embed[:, : x.size(1) + 1]
    if patch_mask is not None and not drop_masked:
        if mask_token is None:
            raise ValueError("a patch_mask needs a mask_token unless drop_masked is set")
        x = torch.where(patch_mask.unsqueeze(-1), mask_token.to(x.dtype), x)
    x = x + pos[:, 1:]
    if patch_mask is not None and drop_masked:
        keep = (~patch_mask).sum(1)
        if not torch.all(keep == keep[0]):
            raise ValueError("drop_masked needs the same number of masked patches in every row")
        x = x[~patch_mask].view(x.size(0), int(keep[0]), x.size(-1))
    cls = (vit.cls_token + pos[:, :1]).expand(x.size(0), -1, -1)
    x = vit.pos_drop(torch.cat([cls, x], dim=1))
    for block in vit.blocks:
        x = block(x)
    return vit.norm(x)


def cross_attention_modules(text_encoder: BertForMaskedLM) -> list[nn.Module]:
    """The `BertSelfAttention` of every fusion layer, in order."""
    fusion = text_encoder.config.fusion_layer
    return [layer.crossattention.self for layer in text_encoder.bert.encoder.layer[fusion:]]


@contextmanager
def capture_cross_attention(
    text_encoder: BertForMaskedLM, layers: Sequence[int] | None = None
) -> Iterator[list[torch.Tensor]]:
    """Collect the head-averaged cross-attention probabilities `(B, 1, T, 1 + P)` of the chosen
    fusion layers during one forward run with `output_attentions=True`.

    A forward hook reads the probabilities the module already returns, so nothing is recomputed
    and no gradient is needed (LAVIS's own `save_attention` path registers a gradient hook and
    fails under `no_grad`).
    """
    modules = cross_attention_modules(text_encoder)
    chosen = range(len(modules)) if layers is None else layers
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple, outputs: tuple) -> None:
        if len(outputs) < 3:
            raise RuntimeError("cross-attention capture needs output_attentions=True")
        # Averaging heads here keeps one (B, 1, T, 1 + P) map per layer instead of H of them.
        captured.append(outputs[1].detach().mean(dim=1, keepdim=True))

    handles = [modules[i].register_forward_hook(hook) for i in chosen]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _load_state(path: str, key: str) -> dict[str, torch.Tensor]:
    # A URL is fetched once into the torch hub cache (LAVIS's convention); offline it fails
    # at once naming the URL, the cache path and the key.
    file = resolve_weights(path, f"model.{key}")
    return dict(model_state(load_checkpoint(file, f"model.{key}")))


def _foreign_keys(state: Mapping[str, torch.Tensor], own: Mapping[str, Any], source: str):
    """Reasons for a foreign checkpoint: its keys the model lacks, the model's keys it lacks."""
    skip = {k: f"not part of this model's {source} parameters" for k in state if k not in own}
    new = {k: f"not in the {source} checkpoint: random initialisation" for k in own}
    return skip, {k: why for k, why in new.items() if k not in state}


def fetch_init_weights(init: InitConfig) -> None:
    """Make the URL / file initialisation sources local before the (large) model is built, so
    a missing file or an offline machine fails at once."""
    if init.pretrained:
        resolve_weights(init.pretrained, "model.pretrained")
    elif init.vit_init:
        resolve_weights(init.vit_init, "model.vit_init")


def load_init_weights(model: nn.Module, init: InitConfig) -> list[str]:
    """Initialise from an ALBEF checkpoint (URL or file), or DeiT + BERT. Returns the names of
    parameters left at their random initialisation (MIM decoder, heads, ...), each also named
    in the log with the checkpoint keys left out."""
    if init.pretrained:
        state = _load_state(init.pretrained, "pretrained")
        for key in ("visual_encoder.pos_embed", "visual_encoder_m.pos_embed"):
            if key in state:
                state[key] = interpolate_pos_embed(state[key], model.visual_encoder)
        skip, new = _foreign_keys(state, model.state_dict(), "ALBEF")
        # Queues are sized by the run config; the checkpoint's sizes need not match.
        skip |= {k: "ITC queue: sized by this run's config" for k in state if "queue" in k}
        report = load_weights(model, state, "model.pretrained", skip=skip, allow_missing=new)
        return sorted(report.kept_initial)
    missing: list[str] = []
    if init.vit_init:
        state = _load_state(init.vit_init, "vit_init")
        state["pos_embed"] = interpolate_pos_embed(state["pos_embed"], model.visual_encoder)
        skip, new = _foreign_keys(state, model.visual_encoder.state_dict(), "DeiT")
        report = load_weights(
            model.visual_encoder, state, "model.vit_init", skip=skip, allow_missing=new
        )
        missing += sorted(report.kept_initial)
    if init.bert_init:
        try:
            bert = BertForMaskedLM.from_pretrained(
                init.bert_init, config=model.text_encoder.config, local_files_only=True
            )
        except OSError as err:
            raise FileNotFoundError(
                f"BERT weights {init.bert_init!r} are not a local folder nor in the local Hugging "
                "Face cache; set `bert_init` to a local copy of bert-base-uncased."
            ) from err
        state = bert.state_dict()
        skip, new = _foreign_keys(state, model.text_encoder.state_dict(), "BERT")
        report = load_weights(
            model.text_encoder, state, "model.bert_init", skip=skip, allow_missing=new
        )
        missing += sorted(report.kept_initial)
    return missing
