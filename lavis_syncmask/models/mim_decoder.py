"""The training-only MIM decoder (method.md §3, MIM [ours]): image tokens, with mask tokens at
the masked positions, self-attend and cross-attend to the unimodal text encoding of the unmasked
text, then a linear head predicts each masked patch's pixels. Built on `nn.TransformerDecoder`.
"""

from __future__ import annotations

import torch
from torch import nn


class MIMDecoder(nn.Module):
    def __init__(
        self,
        vision_width: int,
        text_width: int,
        dim: int,
        layers: int,
        heads: int,
        num_patches: int,
        patch_size: int,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(vision_width, dim)
        self.text_embed = nn.Linear(text_width, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        layer = nn.TransformerDecoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(dim))
        self.head = nn.Linear(dim, patch_size * patch_size * 3)

    def forward(
        self,
        image_tokens: torch.Tensor,
        patch_mask: torch.Tensor,
        text_tokens: torch.Tensor,
        text_attention: torch.Tensor,
    ) -> torch.Tensor:
        """Predict pixels `(B, P, p*p*3)`.

        `image_tokens` `(B, 1 + P, Dv)` (masked patches carry the encoder's mask token) or
        `(B, 1 + P_visible, Dv)` (MAE style: visible patches only, in order); `patch_mask`
        `(B, P)`; `text_tokens` `(B, T, Dt)` with `text_attention` `(B, T)` (1 = real token).
        """
        patches = self.embed(image_tokens[:, 1:])
        b, p = patch_mask.shape
        full = self.mask_token.expand(b, p, -1).to(patches.dtype)
        if patches.size(1) == p:
            full = torch.where(patch_mask.unsqueeze(-1), full, patches)
        else:  # re-insert mask tokens at the dropped positions
            full = full.clone()
            full[~patch_mask] = patches.reshape(-1, patches.size(-1))
        memory = self.text_embed(text_tokens)
        x = self.decoder(full + self.pos_embed, memory, memory_key_padding_mask=text_attention == 0)
        return self.head(x)
