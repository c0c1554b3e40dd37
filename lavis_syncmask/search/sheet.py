"""A contact sheet of search hits: one tile per hit (the product image with its rank, product
id, ITC score and, when re-ranked, ITM probability), under a title line with the query."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from lavis_syncmask.search.query import Hit

TILE = 192
CAPTION = 44
TITLE = 30
PAD = 6


def hit_caption(rank: int, hit: Hit) -> str:
    score = f"itc {hit.score:.3f}" + (f"  itm {hit.itm:.2f}" if hit.itm is not None else "")
    return f"#{rank} {hit.product}\n{score}"


def contact_sheet(
    reader: Any,
    hits: Sequence[Hit],
    title: str,
    out: str | os.PathLike[str],
    columns: int = 4,
) -> Path:
    """Draw ``hits`` (images read from ``reader`` by row) into a PNG at ``out``; returns it."""
    if not hits:
        raise ValueError("no hits to draw")
    font = ImageFont.load_default()
    cols = max(1, min(columns, len(hits)))
    rows = -(-len(hits) // cols)
    width = cols * (TILE + PAD) + PAD
    sheet = Image.new("RGB", (width, TITLE + rows * (TILE + CAPTION + PAD) + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    line = textwrap.shorten(title, width=max(20, width // 7), placeholder=" ...")
    draw.text((PAD, 8), line, fill="black", font=font)
    for i, hit in enumerate(hits):
        x = PAD + (i % cols) * (TILE + PAD)
        y = TITLE + (i // cols) * (TILE + CAPTION + PAD)
        tile = Image.fromarray(reader.image(hit.row)).resize((TILE, TILE), Image.BICUBIC)
        sheet.paste(tile, (x, y))
        draw.rectangle((x, y, x + TILE - 1, y + TILE - 1), outline=(180, 180, 180))
        draw.multiline_text((x + 2, y + TILE + 4), hit_caption(i + 1, hit), fill="black", font=font)
    path = Path(out).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
