"""`syncmask_fashion`: an ALBEF-style fashion vision-language model pretrained with ITC, ITM,
MLM and MIM, where the MLM and MIM masks come from the cross-attention of the momentum teacher
(SyncMask, method.md §3) and the contrastive / matching losses ignore same-product and
duplicate-text pairs (method.md §4).

    >>> import lavis_syncmask  # registers the model
    >>> from lavis.models import load_model_and_preprocess
    >>> model, vis, txt = load_model_and_preprocess(
    ...     "syncmask_fashion", model_type="tiny", is_eval=True)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.models.albef_models.albef_outputs import AlbefOutputFeatures
from torch import nn
from transformers.modeling_outputs import ModelOutput

from lavis_syncmask.common.paths import config_path
from lavis_syncmask.common.precision import full_precision
from lavis_syncmask.data.tokenizer import resolve_tokenizer
from lavis_syncmask.masking import (
    MaskingConfig,
    TokenTables,
    apply_mlm_replacement,
    reduce_cross_attention,
    synchronized_masks,
    word_units,
)
from lavis_syncmask.models import inference
from lavis_syncmask.models.backbones import (
    capture_cross_attention,
    encode_image,
    fetch_init_weights,
    load_init_weights,
)
from lavis_syncmask.models.config import SyncMaskModelConfig
from lavis_syncmask.models.diagnostics import mask_stats
from lavis_syncmask.models.encoders import FusionEncoders
from lavis_syncmask.models.losses import itc_loss, mim_loss, sample_hard_negatives
from lavis_syncmask.models.mim_decoder import MIMDecoder
from lavis_syncmask.models.momentum import FeatureQueue, ema_update, frozen_copy, ramped_alpha
from lavis_syncmask.sampling.false_negatives import itc_targets, itm_forbidden_pairs


@dataclass
class SyncMaskOutput(ModelOutput):
    """Total loss, each weighted term's raw value, and the mask statistics of the step."""

    loss: torch.Tensor | None = None
    loss_itc: torch.Tensor | None = None
    loss_itm: torch.Tensor | None = None
    loss_mlm: torch.Tensor | None = None
    loss_mim: torch.Tensor | None = None
    mask_stats: dict[str, float] | None = None


@dataclass
class _Teacher:
    """What the momentum teacher computes once per step and several losses reuse."""

    image_embeds: torch.Tensor  # (B, 1 + P, Dv)
    image_feat: torch.Tensor  # (B, D) normalised ITC features
    text_feat: torch.Tensor
    image_bank: torch.Tensor  # (D, B + Q): this step's teacher features, then the queue
    text_bank: torch.Tensor
    sim_i2t: torch.Tensor  # (B, B + Q) logits
    sim_t2i: torch.Tensor
    attention: torch.Tensor | None  # (B, T, P) reduced cross-attention, None when unused


@registry.register_model("syncmask_fashion")
class SyncMaskFashion(FusionEncoders):
    PRETRAINED_MODEL_CONFIG_DICT = {
        "base": config_path("models", "syncmask_fashion_base.yaml"),
        "tiny": config_path("models", "syncmask_fashion_tiny.yaml"),
    }

    def __init__(self, config: SyncMaskModelConfig, tokenizer: Any) -> None:
        super().__init__(config.backbone, tokenizer)
        self.config = config
        bb, obj = config.backbone, config.objectives
        self.masking = MaskingConfig.from_dict(config.masking)
        self.tables = TokenTables.from_tokenizer(tokenizer)
        self.vision_proj = nn.Linear(bb.vision_width, bb.embed_dim)
        self.text_proj = nn.Linear(bb.text_width, bb.embed_dim)
        self.itm_head = nn.Linear(bb.text_width, 2)
        self.temp = nn.Parameter(torch.tensor(obj.temp), requires_grad=obj.learn_temp)
        if obj.use_mim:
            self.mim_mask_token = nn.Parameter(torch.zeros(bb.vision_width))
            nn.init.trunc_normal_(self.mim_mask_token, std=0.02)
            self.mim_decoder = MIMDecoder(bb.vision_width, bb.text_width, obj.mim_decoder_dim,
                                          obj.mim_decoder_layers, obj.mim_decoder_heads,
                                          self.grid**2, bb.patch_size)  # fmt: skip
        self.visual_encoder_m = frozen_copy(self.visual_encoder)
        self.text_encoder_m = frozen_copy(self.text_encoder)
        self.vision_proj_m = frozen_copy(self.vision_proj)
        self.text_proj_m = frozen_copy(self.text_proj)
        self.queue = FeatureQueue(bb.embed_dim, obj.queue_size)
        # Persisted with the weights so a resumed run keeps its place in the warm-up.
        self.register_buffer("global_step", torch.zeros((), dtype=torch.long))

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, cfg: Any) -> SyncMaskFashion:
        config = SyncMaskModelConfig.from_dict(cfg)
        init = config.init
        checkpoint = cfg.get("finetuned") if cfg.get("load_finetuned", False) else None
        if not checkpoint:
            fetch_init_weights(init)
        model = cls(config, resolve_tokenizer(config.backbone.tokenizer))
        if not (init.pretrained or init.vit_init or init.bert_init or cfg.get("load_finetuned")):
            logging.warning(
                "syncmask_fashion (%s) starts from random weights: set `pretrained` (ALBEF "
                "checkpoint, URL or file) or `vit_init` + `bert_init` for paper-scale runs",
                cfg.get("model_type", "?"),
            )
        if not checkpoint:  # a fine-tuned checkpoint replaces every weight: fetch nothing
            load_init_weights(model, init)
        model.copy_to_teacher()
        if checkpoint:
            model.load_checkpoint(checkpoint)
        return model

    @torch.no_grad()
    def copy_to_teacher(self) -> None:
        for student, teacher in self._momentum_pairs():
            teacher.load_state_dict(student.state_dict())

    def checkpoint_skips(self, state: Mapping[str, torch.Tensor]) -> dict[str, str]:
        """Queue buffers of another size: evaluation never reads the queue, and a training run
        with a new `queue_size` starts a fresh one. Everything else loads strictly."""
        own = self.state_dict()
        return {
            key: f"ITC queue of {tuple(value.shape)}, this config's is {tuple(own[key].shape)}: "
            "not used by evaluation, restarted by training"
            for key, value in state.items()
            if key.startswith("queue.") and key in own and value.shape != own[key].shape
        }

    def _momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [
            (self.visual_encoder, self.visual_encoder_m),
            (self.text_encoder, self.text_encoder_m),
            (self.vision_proj, self.vision_proj_m),
            (self.text_proj, self.text_proj_m),
        ]

    # ----------------------------------------------------------------- encoders
    def itm_text_states(self, ids: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """What `itm_logits` fuses with an image: the unimodal text states `(B, T, Dt)`."""
        return self.encode_text(ids, att).last_hidden_state

    def itm_logits(self, text_embeds: torch.Tensor, att: torch.Tensor, image_embeds: torch.Tensor):
        return self.itm_head(self.fuse(text_embeds, att, image_embeds)[:, 0])

    # ----------------------------------------------------------------- training
    def forward(self, samples: dict[str, Any]) -> SyncMaskOutput:
        obj = self.config.objectives
        image = samples["image"]
        ids_product = samples.get("product_id", samples.get("image_id")).to(self.device).long()
        ids_text = samples.get("text_id", ids_product).to(self.device).long()
        want_offsets = "visible_spans" in samples
        tok = self.tokenize(list(samples["text_input"]), offsets=want_offsets)
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)

        image_embeds = encode_image(self.visual_encoder, image)
        image_feat = F.normalize(self.vision_proj(image_embeds[:, 0]), dim=-1)
        text_embeds = self.encode_text(tok.input_ids, tok.attention_mask).last_hidden_state
        text_feat = F.normalize(self.text_proj(text_embeds[:, 0]), dim=-1)

        step = self._advance_step(samples)
        teacher = self._teacher(image, tok, step, bool(samples.get("starts_update", True)))
        positives = self.itc_positives(ids_product, ids_text)
        alpha = self.distill_alpha(samples)
        loss_itc = itc_loss(
            self.itc_logits(image_feat, teacher.text_bank),
            self.itc_logits(text_feat, teacher.image_bank),
            positives,
            teacher.sim_i2t,
            teacher.sim_t2i,
            alpha,
        )
        sim = self.itc_logits(image_feat, text_feat.T).detach()
        forbidden = self.itm_forbidden(samples, ids_product, ids_text)
        loss_itm = self._itm_loss(image_embeds, text_embeds, tok.attention_mask, sim, forbidden)

        units = word_units(
            tok.input_ids, tok.attention_mask, self.token_tables(), self.masking.sync_word_filter
        )
        masks = synchronized_masks(teacher.attention, units, self.grid**2, self.masking, step=step)
        zero = torch.zeros((), device=self.device)
        loss_mlm = loss_mim = zero  # a term with weight 0 is not computed at all
        if obj.mlm_weight:
            loss_mlm = self._mlm_loss(
                tok, masks.token_mask, image_embeds, teacher.image_embeds, alpha
            )
        if obj.use_mim and obj.mim_weight:
            loss_mim = self._mim_loss(image, masks.patch_mask, text_embeds, tok.attention_mask)

        self.queue.enqueue(teacher.image_feat, teacher.text_feat, ids_product, ids_text)
        loss = (
            obj.itc_weight * loss_itc
            + obj.itm_weight * loss_itm
            + obj.mlm_weight * loss_mlm
            + obj.mim_weight * loss_mim
        )
        stats = mask_stats(self, samples, tok, masks, units, teacher.attention)
        return SyncMaskOutput(loss, loss_itc, loss_itm, loss_mlm, loss_mim, stats)

    def _advance_step(self, samples: dict[str, Any]) -> int:
        """The 0-based optimizer update this training batch belongs to (the mask warm-up's
        clock). `global_step` counts updates begun; the runner's loop marks the first
        micro-batch of each update with `starts_update`, so `accum_grad_iters` does not change
        the schedule (a batch without the mark is an update of its own)."""
        if not self.training:
            return int(self.global_step)
        if samples.get("starts_update", True):
            self.global_step += 1
        return max(int(self.global_step) - 1, 0)

    def distill_alpha(self, samples: dict[str, Any]) -> float:
        """`alpha`, ramped over `alpha_ramp_epochs` in training as LAVIS's ALBEF / BLIP."""
        obj = self.config.objectives
        return ramped_alpha(obj.alpha, obj.alpha_ramp_epochs if self.training else 0, samples)

    def itc_positives(self, ids_product: torch.Tensor, ids_text: torch.Tensor) -> torch.Tensor:
        """`(B, B + queue)` ITC targets (`sampling.false_negatives.itc_targets`)."""
        return itc_targets(ids_product, ids_text, self.queue.idx_queue, self.queue.text_id_queue,
                           self.config.objectives.false_negatives)  # fmt: skip

    def itm_forbidden(
        self, samples: dict[str, Any], ids_product: torch.Tensor, ids_text: torch.Tensor
    ) -> torch.Tensor:
        """`(B, B)` pairs never drawn as ITM negatives (`false_negatives.itm_forbidden_pairs`)."""
        obj = self.config.objectives
        return itm_forbidden_pairs(ids_product, ids_text, samples.get("text_similarity"),
                                   obj.near_duplicate_sim, obj.false_negatives)  # fmt: skip

    def token_tables(self) -> TokenTables:
        if self.tables.is_special.device != self.device:
            self.tables = self.tables.to(self.device)
        return self.tables

    @torch.no_grad()
    def _teacher(self, image: torch.Tensor, tok: Any, step: int, starts_update: bool) -> _Teacher:
        """EMA update (once per optimizer update), then the teacher's ITC logits and (for
        SyncMask) its cross-attention."""
        if self.training and starts_update:
            ema_update(self._momentum_pairs(), self.config.objectives.momentum)
        image_embeds_m = encode_image(self.visual_encoder_m, image)
        image_feat_m = F.normalize(self.vision_proj_m(image_embeds_m[:, 0]), dim=-1)
        text_m = self.encode_text(tok.input_ids, tok.attention_mask, self.text_encoder_m)
        text_feat_m = F.normalize(self.text_proj_m(text_m.last_hidden_state[:, 0]), dim=-1)
        # Cloned: the queue is updated in place at the end of the step.
        image_bank = torch.cat([image_feat_m.T, self.queue.image_queue.clone()], dim=1)
        text_bank = torch.cat([text_feat_m.T, self.queue.text_queue.clone()], dim=1)
        attention = None
        if self._sync_active(step):
            attention = self.teacher_attention(
                text_m.last_hidden_state, tok.attention_mask, image_embeds_m
            )
        return _Teacher(
            image_embeds_m,
            image_feat_m,
            text_feat_m,
            image_bank,
            text_bank,
            self.itc_logits(image_feat_m, text_bank),
            self.itc_logits(text_feat_m, image_bank),
            attention,
        )

    @torch.no_grad()
    def teacher_attention(
        self, text_hidden: torch.Tensor, att: torch.Tensor, image_embeds_m: torch.Tensor
    ) -> torch.Tensor:
        """The teacher's cross-attention `(B, T, P)`, averaged over heads and `sync_layers`,
        from its unimodal text output `(B, T, Dt)` and image tokens `(B, 1 + P, Dv)`."""
        # fp32 under autocast: the masks rank these probabilities, and 16-bit scores tie and
        # reorder. Only the fusion layers run here, on short texts: a small share of the step.
        with (
            full_precision(self.device),
            capture_cross_attention(self.text_encoder_m, self.config.sync_layers) as maps,
        ):
            self.fuse(
                text_hidden.float(),
                att,
                image_embeds_m.float(),
                self.text_encoder_m,
                output_attentions=True,
            )
        return reduce_cross_attention(maps)

    def itc_logits(self, feat: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
        """`(B, D) @ (D, N) / temp` in fp32, also under autocast: the logits are divided by a
        temperature near 0.07, which would magnify bf16's rounding of the dot products 14x."""
        with full_precision(feat.device):
            return feat.float() @ bank.float() / self.temp.float()

    def _sync_active(self, step: int) -> bool:
        """The teacher's extra fusion pass runs only when its attention will be used (not for
        random masks, nor during a step warm-up)."""
        return self.masking.effective_sync_ratio(step) > 0

    def _itm_loss(self, image_embeds, text_embeds, att, sim, forbidden) -> torch.Tensor:
        batch = image_embeds.size(0)
        neg_image, ok_i = sample_hard_negatives(sim.T, forbidden)  # an image for each text
        neg_text, ok_t = sample_hard_negatives(sim, forbidden)  # a text for each image
        logits = self.itm_logits(
            torch.cat([text_embeds, text_embeds, text_embeds[neg_text]]),
            torch.cat([att, att, att[neg_text]]),
            torch.cat([image_embeds, image_embeds[neg_image], image_embeds]),
        )
        labels = torch.cat([torch.ones(batch), torch.zeros(2 * batch)]).long().to(self.device)
        labels[batch:][~torch.cat([ok_i, ok_t])] = -100  # no valid negative: leave the pair out
        return F.cross_entropy(logits, labels, ignore_index=-100)

    def _mlm_loss(self, tok, token_mask, image_embeds, image_embeds_m, alpha) -> torch.Tensor:
        masked_ids, labels = apply_mlm_replacement(
            tok.input_ids,
            token_mask,
            self.token_tables(),
            len(self.tokenizer),
            self.masking.mlm_probs,
        )
        if not (labels != -100).any():  # nothing maskable in the whole batch
            return image_embeds.sum() * 0.0
        image_att = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
        soft = None
        if self.config.objectives.mlm_distill:
            with torch.no_grad():
                logits_m = self.text_encoder_m(
                    masked_ids,
                    attention_mask=tok.attention_mask,
                    encoder_hidden_states=image_embeds_m,
                    encoder_attention_mask=image_att,
                    return_logits=True,
                )
            soft = F.softmax(logits_m, dim=-1)
        out = self.text_encoder(
            masked_ids,
            attention_mask=tok.attention_mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_att,
            labels=labels,
            soft_labels=soft,
            alpha=alpha,
            return_dict=True,
        )
        return out.loss

    def _mim_loss(self, image, patch_mask, text_embeds, att) -> torch.Tensor:
        obj = self.config.objectives
        tokens = encode_image(
            self.visual_encoder, image, patch_mask, self.mim_mask_token, obj.mim_drop_masked
        )
        pred = self.mim_decoder(tokens, patch_mask, text_embeds, att)
        return mim_loss(pred, image, patch_mask, self.patch_size, obj.mim_norm_pix)

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def extract_features(self, samples: dict[str, Any], mode: str = "multimodal"):
        """LAVIS feature extractor: `mode` in image | text | multimodal."""
        if mode not in ("image", "text", "multimodal"):
            raise ValueError(f"mode must be image, text or multimodal, got {mode!r}")
        out = AlbefOutputFeatures()
        if mode in ("image", "multimodal"):
            out.image_embeds = encode_image(self.visual_encoder, samples["image"].to(self.device))
            out.image_embeds_proj = F.normalize(self.vision_proj(out.image_embeds), dim=-1)
        if mode in ("text", "multimodal"):
            text = samples["text_input"]
            tok = self.tokenize([text] if isinstance(text, str) else list(text))
            out.text_embeds = self.encode_text(tok.input_ids, tok.attention_mask).last_hidden_state
            out.text_embeds_proj = F.normalize(self.text_proj(out.text_embeds), dim=-1)
        if mode == "multimodal":
            out.multimodal_embeds = self.fuse(out.text_embeds, tok.attention_mask, out.image_embeds)
        return out

    def compute_sim_matrix(self, data_loader, task_cfg) -> tuple[Any, Any]:
        """LAVIS's retrieval-task contract: dense `(images, texts)` and `(texts, images)` score
        arrays, ITC everywhere and ITC + ITM on each query's top `k_test`."""
        k_test = int(getattr(task_cfg, "k_test", self.config.objectives.k_test))
        return inference.dense_score_matrices(self, data_loader, k_test)

    @torch.no_grad()
    def sampler_text_embeddings(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Momentum ITC text embeddings `(N, D)`, to refresh the batch sampler's similarity."""
        return inference.text_features(self, texts, batch_size, momentum=True)[0]
