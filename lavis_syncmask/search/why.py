"""Why a product matched a text query: the fusion encoder's cross-attention for that (query,
product image) pair, as SyncMask computes it for its masks (the momentum teacher's attention,
averaged over heads and ``sync_layers``, see `SyncMaskFashion.teacher_attention`).

Each candidate word of the query (stop-words and punctuation left out, as the masks do) gets
its grounding score (``masking.sync_word_score``: the peak of its attention row, or its
negative entropy); the image gets the attention heat over its patches, averaged over those
words, with the most-attended patches outlined. The picture is drawn as the mask pictures of
`lavis_syncmask.cli.viz` are: the image with a jet heat map at 35 % opacity.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from lavis_syncmask.masking import word_attention, word_scores, word_units
from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.search.model import SearchModel

#: Patches outlined in the picture: the share of the grid the MIM masks hide by default.
TOP_SHARE = 0.25


@dataclass
class Why:
    words: list[tuple[str, float]]  # each candidate word of the query, its grounding score
    heat: np.ndarray  # (grid, grid) attention over the image patches, summing to 1
    top: list[int]  # patch indices (row-major) with the most attention, most first
    image: np.ndarray  # (S, S, 3) uint8: the row's image as the model saw it (resized)


def _word_spans(text: str, offsets: torch.Tensor, word_ids: torch.Tensor, n: int) -> list[str]:
    """The text of each of the ``n`` candidate words (first piece start to last piece end)."""
    words = []
    for word in range(n):
        pieces = torch.nonzero(word_ids == word).flatten().tolist()
        start, end = int(offsets[pieces[0], 0]), int(offsets[pieces[-1], 1])
        words.append(text[start:end])
    return words


@torch.no_grad()
def explain(search: SearchModel, text: str, pixels: np.ndarray) -> Why:
    """Cross-attention of query ``text`` over the image ``pixels`` (``(H, W, 3)`` uint8)."""
    model = search.model
    cleaned = search.text_processor(text or "")
    if not cleaned.strip():
        raise ValueError("empty query: give at least one word")
    size = int(model.grid * model.patch_size)
    resized = Image.fromarray(pixels).convert("RGB").resize((size, size), Image.BICUBIC)
    image = search.vis_processor(resized).unsqueeze(0).to(model.device)
    tok = model.tokenize([cleaned], offsets=True)
    image_m = encode_image(model.visual_encoder_m, image)
    text_m = model.encode_text(tok.input_ids, tok.attention_mask, model.text_encoder_m)
    attention = model.teacher_attention(text_m.last_hidden_state, tok.attention_mask, image_m)
    units = word_units(
        tok.input_ids, tok.attention_mask, model.token_tables(), model.masking.sync_word_filter
    )
    n = int(units.num_candidates[0])
    per_word = word_attention(attention, units)[0, :n]  # (n, P)
    scores = word_scores(per_word[None], model.masking.sync_word_score)[0].tolist() if n else []
    names = _word_spans(cleaned, tok.offset_mapping[0].cpu(), units.word_ids[0].cpu(), n)
    # No content word (a query of stop-words only): every token's attention stands in.
    heat = (per_word if n else attention[0]).mean(dim=0).float().cpu()
    heat = heat / heat.sum().clamp(min=1e-12)
    count = max(1, round(TOP_SHARE * heat.numel()))
    top = torch.argsort(heat, descending=True, stable=True)[:count].tolist()
    grid = int(model.grid)
    return Why(list(zip(names, map(float, scores))), heat.view(grid, grid).numpy(), top,
               np.asarray(resized, dtype=np.uint8))  # fmt: skip


def why_png(why: Why, title: str = "") -> bytes:
    """The image with the attention heat (jet, 35 %) and its top patches outlined, as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    # The object API, not pyplot: pyplot's global figure state is not safe across threads.
    fig = Figure(figsize=(3.2, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.92))
    size, grid = why.image.shape[0], why.heat.shape[0]
    ax.imshow(why.image)
    ax.imshow(why.heat, cmap="jet", alpha=0.35, extent=(0, size, size, 0))
    cell = size / grid
    for patch in why.top:
        r, c = divmod(patch, grid)
        ax.add_patch(Rectangle((c * cell, r * cell), cell, cell, fill=False, ec="white", lw=0.8))
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
