"""Summary of a written synthetic catalogue, read back from its files (so it also checks them):
products and rows per split, views per product, categories, near-duplicate share, and the
share of content words (words naming an attribute) that are invisible in each view type, the
quantity SyncMask exploits (method.md sections 1 and 5).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lavis_syncmask.data.formats import (
    CATEGORY_KEY,
    DESCRIPTION_KEY,
    PRODUCT_KEY,
    SUBCATEGORY_KEY,
    TRAIN_FILE,
    VALIDATION_FILE,
    iter_strings,
    sidecar_path,
)
from lavis_syncmask.synthetic.fashioniq_writer import FASHIONIQ_CATEGORIES, FASHIONIQ_SPLITS
from lavis_syncmask.synthetic.taxonomy import POSES

SPLIT_FILES = {"train": TRAIN_FILE, "validation": VALIDATION_FILE}


def _runs(product_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start row and length of each run of equal consecutive product ids."""
    if product_ids.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, product_ids[1:] != product_ids[:-1]])
    return starts, np.diff(np.r_[starts, product_ids.size])


def _split_summary(h5_path: Path) -> tuple[dict[str, Any], set[str], set[str]]:
    with h5py.File(h5_path, "r") as h5:
        ids = h5[PRODUCT_KEY][:, 0].astype(np.int64)
        descriptions = list(iter_strings(h5[DESCRIPTION_KEY], DESCRIPTION_KEY, h5_path))
        categories = set(iter_strings(h5[CATEGORY_KEY], CATEGORY_KEY, h5_path))
        subcategories = set(iter_strings(h5[SUBCATEGORY_KEY], SUBCATEGORY_KEY, h5_path))
    starts, lengths = _runs(ids)
    shared = Counter(descriptions[s] for s in starts)
    duplicates = sum(1 for s in starts if shared[descriptions[s]] > 1)
    views = Counter(int(n) for n in lengths)
    return (
        {
            "products": int(starts.size),
            "rows": int(ids.size),
            "rows_consecutive": bool(len(set(ids[starts].tolist())) == starts.size),
            "views_per_product": {
                str(k): views.get(k, 0) for k in range(1, max(views, default=6) + 1)
            },
            "mean_views": float(lengths.mean()) if lengths.size else 0.0,
            "near_duplicate_share": duplicates / max(1, starts.size),
            "categories": len(categories),
            "subcategories": len(subcategories),
        },
        categories,
        subcategories,
    )


def invisible_word_counts(sidecar: Path) -> dict[str, list[int]]:
    """pose -> ``[content words, invisible content words]`` over every row of a sidecar (both
    text fields; a content word is one that names an attribute)."""
    counts: dict[str, list[int]] = {}
    with open(sidecar, encoding="ascii") as lines:
        for line in lines:
            record = json.loads(line)
            if "row" not in record:
                continue  # the fingerprint header
            tally = counts.setdefault(record["pose"], [0, 0])
            for words in record["words"].values():
                for _, _, visible, attribute in words:
                    if attribute is not None:
                        tally[0] += 1
                        tally[1] += int(not visible)
    return counts


def _fashioniq_summary(root: Path) -> dict[str, dict[str, int]] | None:
    if not root.is_dir():
        return None
    out: dict[str, dict[str, int]] = {}
    for category in FASHIONIQ_CATEGORIES:
        out[category] = {}
        for split in FASHIONIQ_SPLITS:
            path = root / "captions" / f"cap.{category}.{split}.json"
            out[category][split] = (
                len(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else 0
            )
    out["images"] = {
        "total": sum(1 for _ in (root / "images").iterdir()) if (root / "images").is_dir() else 0
    }
    return out


def summarize_catalogue(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a catalogue folder back and summarise it (JSON-serialisable dict)."""
    out = Path(out_dir)
    splits: dict[str, Any] = {}
    categories: set[str] = set()
    subcategories: set[str] = set()
    words = {pose: [0, 0] for pose in POSES}
    for split, filename in SPLIT_FILES.items():
        path = out / filename
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: {out} is not a synthetic catalogue folder"
            )
        splits[split], cats, subs = _split_summary(path)
        categories |= cats
        subcategories |= subs
        if sidecar_path(path).exists():
            for pose, (content, invisible) in invisible_word_counts(sidecar_path(path)).items():
                words.setdefault(pose, [0, 0])
                words[pose][0] += content
                words[pose][1] += invisible
    non_front = [sum(words[p][i] for p in words if p != "front") for i in (0, 1)]
    vocab = out / "vocab" / "vocab.txt"
    return {
        "splits": splits,
        "categories": len(categories),
        "subcategories": len(subcategories),
        "invisible_content_words": {p: (w[1] / w[0] if w[0] else None) for p, w in words.items()},
        "invisible_content_words_non_front": non_front[1] / non_front[0] if non_front[0] else None,
        "fashioniq": _fashioniq_summary(out / "fashioniq"),
        "vocab_tokens": sum(1 for _ in open(vocab, encoding="utf-8")) if vocab.exists() else None,
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_summary(summary: dict[str, Any]) -> str:
    """A few human-readable lines of :func:`summarize_catalogue`'s dict."""
    lines = ["Synthetic fashion catalogue"]
    for split, s in summary["splits"].items():
        views = " ".join(f"{k}:{v}" for k, v in s["views_per_product"].items())
        lines.append(
            f"  {split + ':':<12}{s['products']} products, {s['rows']} rows; views/product {views} "
            f"(mean {s['mean_views']:.2f}); near-duplicate products {_percent(s['near_duplicate_share'])}"
        )
    lines.append(
        f"  categories: {summary['categories']}, subcategories: {summary['subcategories']}"
    )
    shares = ", ".join(f"{p} {_percent(v)}" for p, v in summary["invisible_content_words"].items())
    lines.append(
        f"  invisible content words per view: {shares} "
        f"(all non-front views {_percent(summary['invisible_content_words_non_front'])})"
    )
    fiq = summary.get("fashioniq")
    if fiq:
        per = ", ".join(
            f"{c} {'/'.join(str(fiq[c][s]) for s in FASHIONIQ_SPLITS)}"
            for c in FASHIONIQ_CATEGORIES
        )
        lines.append(
            f"  FashionIQ triplets (train/val/test): {per}; {fiq['images']['total']} images"
        )
    if summary.get("vocab_tokens") is not None:
        lines.append(f"  vocabulary: {summary['vocab_tokens']} WordPiece tokens")
    return "\n".join(lines)
