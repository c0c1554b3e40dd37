"""Mask pictures: what SyncMask hides, next to random masks, on rows of a FashionGen h5.

    python -m lavis_syncmask.viz --checkpoint CKPT --h5 FILE --rows 0,5,9 --out masks.png

For each row: the image with the momentum teacher's cross-attention (averaged over the text's
content words) as a heat map and the masked patches greyed, and the text with the masked words
highlighted and the words the view does not show (from the `*_visibility.jsonl` sidecar, when
there is one) underlined in blue. SyncMask (left) and random masks (right) come from the same
trained teacher on the same pair (method.md section 3).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavis_syncmask.masking.strategies import STRATEGIES


def load_model(checkpoint: str, model_type: str, tokenizer: str) -> Any:
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    cls = registry.get_model_class("syncmask_fashion")
    cfg = OmegaConf.load(cls.default_config_path(model_type)).model
    cfg.update(load_finetuned=True, finetuned=checkpoint, tokenizer=tokenizer)
    return cls.from_config(cfg).eval()


def load_rows(h5: Path, rows: list[int], image_size: int) -> tuple[dict[str, Any], list[list]]:
    """A batch of `rows` (with visible spans) and, per row, the invisible-word spans."""
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    from lavis_syncmask.data.fashiongen import field_keys
    from lavis_syncmask.data.fashiongen_datasets import FashionGenPretrainDataset
    from lavis_syncmask.data.processors import process_text

    vis = registry.get_processor_class("blip_image_eval").from_config(
        OmegaConf.create({"image_size": image_size})
    )
    text = registry.get_processor_class("syncmask_text").from_config(OmegaConf.create({}))
    dataset = FashionGenPretrainDataset(h5, vis, text)
    invisible = []
    for row in rows:
        spans: list = []
        if dataset.sidecar is not None:
            words = (
                dataset.sidecar.record(row).get("words", {}).get(field_keys("description")[0], [])
            )
            # Invisible: a word naming an attribute (4th field) that this view does not show.
            hidden = [(s, e) for s, e, visible, attribute in words if attribute and not visible]
            spans = process_text(text, dataset.raw_texts[row], hidden)[1] or []
        invisible.append(spans)
    return dataset.collater([dataset[r] for r in rows]), invisible


@torch.no_grad()
def masks_for(model: Any, samples: dict[str, Any]) -> tuple[Any, dict[str, Any], torch.Tensor]:
    """Tokens, {strategy: SyncMasks} and the teacher attention `(B, T, P)` of one batch."""
    from lavis_syncmask.masking import synchronized_masks, word_units
    from lavis_syncmask.models.backbones import encode_image

    tok = model.tokenize(list(samples["text_input"]), offsets=True)
    image_m = encode_image(model.visual_encoder_m, samples["image"].to(model.device))
    text_m = model.encode_text(tok.input_ids, tok.attention_mask, model.text_encoder_m)
    attention = model.teacher_attention(text_m.last_hidden_state, tok.attention_mask, image_m)
    out = {}
    for name in STRATEGIES:
        config = dataclasses.replace(model.masking, strategy=name)
        units = word_units(tok.input_ids, tok.attention_mask, model.token_tables(), True)
        torch.manual_seed(0)
        out[name] = synchronized_masks(
            attention, units, model.grid**2, config, step=config.sync_warmup_steps
        )
    return tok, out, attention


def _draw_text(ax: Any, text: str, masked: list, hidden: list) -> None:
    """Words laid out left to right with wrapping; masked words on a red box, invisible ones
    underlined in blue."""
    ax.axis("off")
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    x, y, pos = 0.0, 1.0, 0
    for word in text.split():
        start = text.index(word, pos)
        end, pos = start + len(word), start + len(word)
        is_masked = any(s < end and start < e for s, e in masked)
        is_hidden = any(s <= start and end <= e for s, e in hidden)
        box = {"facecolor": "#ff8a80", "edgecolor": "none", "pad": 1} if is_masked else None
        item = ax.text(x, y, word, fontsize=7, va="top", bbox=box, transform=ax.transAxes)
        extent = item.get_window_extent(renderer).transformed(ax.transAxes.inverted())
        if extent.x1 > 1.0 and x > 0:
            item.remove()
            x, y = 0.0, y - 0.09
            item = ax.text(x, y, word, fontsize=7, va="top", bbox=box, transform=ax.transAxes)
            extent = item.get_window_extent(renderer).transformed(ax.transAxes.inverted())
        if is_hidden:
            mid = (extent.y0 + extent.y1) / 2
            ax.plot(
                [extent.x0, extent.x1], [mid, mid], color="black", lw=0.8, transform=ax.transAxes
            )
        x = extent.x1 + 0.015


def _image(samples: dict[str, Any], i: int) -> np.ndarray:
    img = samples["image"][i].permute(1, 2, 0).numpy()
    return (img - img.min()) / max(img.max() - img.min(), 1e-6)


def draw(
    rows: list[int],
    samples: dict[str, Any],
    invisible: list,
    tok: Any,
    masks: dict,
    attention: torch.Tensor,
    grid: int,
    out: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(samples["text_input"])
    cols = 2 * len(STRATEGIES)  # per strategy: the image, then the text
    fig, axes = plt.subplots(
        n,
        cols,
        figsize=(3.5 * cols, 3.2 * n),
        gridspec_kw={"width_ratios": [1, 1.4] * len(STRATEGIES)},
        squeeze=False,
    )
    offsets = tok.offset_mapping.cpu()
    for i in range(n):
        heat = attention[i].mean(0).view(grid, grid).cpu().numpy()
        for j, name in enumerate(STRATEGIES):
            m = masks[name]
            ax_img, ax_txt = axes[i, 2 * j], axes[i, 2 * j + 1]
            image = _image(samples, i)
            ax_img.imshow(image)
            ax_img.imshow(
                heat, cmap="jet", alpha=0.35, extent=(0, image.shape[1], image.shape[0], 0)
            )
            cell = image.shape[0] / grid
            for p in torch.nonzero(m.patch_mask[i]).flatten().tolist():
                r, c = divmod(p, grid)
                ax_img.add_patch(
                    plt.Rectangle((c * cell, r * cell), cell, cell, color="grey", alpha=0.6)
                )
            ax_img.set_title(f"row {rows[i]}: {name} (grey = masked patches)", fontsize=8)
            ax_img.axis("off")
            token_mask = m.token_mask[i].cpu()
            spans = [
                tuple(offsets[i, t].tolist()) for t in torch.nonzero(token_mask).flatten().tolist()
            ]
            _draw_text(ax_txt, samples["text_input"][i], spans, invisible[i])
    fig.suptitle(
        "teacher attention (heat), masked words (red), words the view does not show (underlined in blue)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="syncmask_fashion checkpoint (.pth)")
    parser.add_argument("--h5", required=True, help="FashionGen-format h5 file")
    parser.add_argument("--rows", default="0,5,9", help="comma-separated row indices")
    parser.add_argument("--out", default="masks.png")
    parser.add_argument("--model-type", default="tiny")
    parser.add_argument("--tokenizer", default=None, help="default: vocab/ next to the h5")
    args = parser.parse_args(argv)
    import lavis_syncmask  # noqa: F401  registers the model and processors

    h5 = Path(args.h5)
    rows = [int(r) for r in args.rows.split(",") if r.strip()]
    model = load_model(args.checkpoint, args.model_type, args.tokenizer or str(h5.parent / "vocab"))
    samples, invisible = load_rows(h5, rows, model.grid * model.patch_size)
    tok, masks, attention = masks_for(model, samples)
    draw(rows, samples, invisible, tok, masks, attention, model.grid, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
