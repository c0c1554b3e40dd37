"""Summary of a generated synthetic catalogue, read back from its files (so it also checks
what a reader will see): products and rows per split, views per product, category counts,
near-duplicate share, and the share of invisible content words per view type
(benchmarks-and-data.md, "The synthetic fashion set").

A *content word* is a word that names a visual attribute (its sidecar attribute is not null);
it is invisible in a view when what it names cannot be seen there.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lavis_syncmask.data.synthetic.taxonomy import VIEW_KINDS

SPLIT_STEMS = {"train": "fashiongen_256_256_train", "validation": "fashiongen_256_256_validation"}


def _strings(h5: h5py.File, key: str) -> list[str]:
    return [bytes(v).decode("latin-1") for v in h5[key][:, 0]]


def _split_summary(h5_path: Path) -> tuple[dict[str, Any], set[str], set[str]]:
    with h5py.File(h5_path, "r") as h5:
        ids = h5["input_productID"][:, 0]
        descriptions = _strings(h5, "input_description")
        categories, subcategories = (
            _strings(h5, "input_category"),
            _strings(h5, "input_subcategory"),
        )
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    views = np.diff(np.r_[starts, len(ids)])
    texts = Counter(descriptions[i] for i in starts)
    shared = sum(1 for i in starts if texts[descriptions[i]] > 1)
    summary = {
        "products": int(len(starts)),
        "rows": int(len(ids)),
        "views_per_product": {str(k): int(v) for k, v in sorted(Counter(views.tolist()).items())},
        "categories": len(set(categories)),
        "subcategories": len(set(subcategories)),
        "near_duplicate_share": shared / max(len(starts), 1),
    }
    return summary, set(categories), set(subcategories)


def invisible_shares(sidecar_path: str | os.PathLike[str]) -> dict[str, list[float]]:
    """Per view type, the share of invisible content words of each row (rows without
    content words are left out)."""
    shares: dict[str, list[float]] = {kind: [] for kind in VIEW_KINDS}
    with open(sidecar_path, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            words = [w for field in record["words"].values() for w in field if w[3] is not None]
            if words:
                kind = record["pose"].split("_")[0]
                shares.setdefault(kind, []).append(sum(1 for w in words if not w[2]) / len(words))
    return shares


def summarize_catalogue(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The summary dict of the catalogue in ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
    splits: dict[str, Any] = {}
    all_categories: set[str] = set()
    all_subcategories: set[str] = set()
    pooled: dict[str, list[float]] = {}
    for split, stem in SPLIT_STEMS.items():
        h5_path = out / f"{stem}.h5"
        if not h5_path.exists():
            raise FileNotFoundError(f"{h5_path} does not exist; generate the catalogue first")
        splits[split], categories, subcategories = _split_summary(h5_path)
        all_categories |= categories
        all_subcategories |= subcategories
        sidecar = out / f"{stem}_visibility.jsonl"
        if sidecar.exists():
            for kind, values in invisible_shares(sidecar).items():
                pooled.setdefault(kind, []).extend(values)
    summary: dict[str, Any] = {
        "splits": splits,
        "categories": len(all_categories),
        "subcategories": len(all_subcategories),
        "invisible_content_share": {k: float(np.mean(v)) for k, v in pooled.items() if v},
    }
    captions = out / "fashioniq" / "captions"
    if captions.is_dir():
        summary["fashioniq"] = {
            path.name[len("cap.") : -len(".json")]: len(json.loads(path.read_text("utf-8")))
            for path in sorted(captions.glob("cap.*.json"))
        }
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of :func:`summarize_catalogue` output."""
    lines = []
    for split, info in summary["splits"].items():
        views = ", ".join(f"{k}: {v}" for k, v in info["views_per_product"].items())
        lines.append(
            f"{split:<10} {info['products']:>6} products {info['rows']:>7} rows | views per "
            f"product {{{views}}} | near-duplicate share {info['near_duplicate_share']:.1%}"
        )
    lines.append(f"categories {summary['categories']}, subcategories {summary['subcategories']}")
    shares = summary["invisible_content_share"]
    lines.append(
        "invisible content words per view: "
        + ", ".join(f"{kind} {share:.1%}" for kind, share in shares.items())
    )
    if "fashioniq" in summary:
        lines.append(
            "FashionIQ triplets: " + ", ".join(f"{k} {v}" for k, v in summary["fashioniq"].items())
        )
    return "\n".join(lines)
