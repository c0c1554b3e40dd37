"""A small own-catalogue on disk for the catalogue, converter and search tests: product photos
of different sizes (coloured garments on white), a CSV and a JSONL table per split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (200, 30, 30),
    "blue": (30, 60, 200),
    "green": (40, 160, 60),
    "black": (20, 20, 20),
}
GARMENTS = {
    "shirt": ("tops", "shirts"),
    "dress": ("dresses", "dresses"),
    "skirt": ("skirts", "skirts"),
}


def draw_product(colour: str, garment: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, (255, 255, 255))
    w, h = size
    box = (
        (w // 4, h // 6, 3 * w // 4, 5 * h // 6)
        if garment != "skirt"
        else (w // 5, h // 2, 4 * w // 5, 5 * h // 6)
    )
    ImageDraw.Draw(image).rectangle(box, fill=COLOURS[colour])
    return image


def write_catalogue(root: Path, products_per_split: tuple[int, int] = (12, 6)) -> Path:
    """``root/images/*.jpg`` and ``root/{train,val}.{csv,jsonl}``; two views per product."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    combos = [(c, g) for c in COLOURS for g in GARMENTS]
    start = 0
    for split, count in zip(("train", "val"), products_per_split):
        rows = []
        for i in range(start, start + count):
            colour, garment = combos[i % len(combos)]
            category, subcategory = GARMENTS[garment]
            for view, size in enumerate([(300, 400), (256, 256)]):
                name = f"p{i}_{view}.jpg"
                draw_product(colour, garment, size).save(images / name, quality=90)
                rows.append({
                    "image": name, "text": f"A {colour} {garment} in cotton.",
                    "product_id": f"SKU-{i:04d}", "category": category, "subcategory": subcategory,
                })  # fmt: skip
        start += count
        with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with open(root / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
    return root
