"""Search without a model: best row per product, the deeper look when one product fills the
top rows, index checks, and the contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lavis_syncmask.search.index import FEATURES_FILE, INDEX_VERSION, META_FILE, ROWS_FILE
from lavis_syncmask.search.query import Hit, SearchIndex, top_products
from lavis_syncmask.search.sheet import contact_sheet


def _index(features: np.ndarray, products: list[str]) -> SearchIndex:
    return SearchIndex(Path("."), {}, features.astype(np.float32), products, list(products))


def test_top_products_keeps_each_products_best_row() -> None:
    features = np.eye(4)[[0, 0, 1, 2, 3]] * np.array([[1.0], [0.9], [0.8], [0.7], [0.6]])
    index = _index(features, ["a", "a", "b", "c", "d"])
    hits = top_products(index, np.ones(4, dtype=np.float32), k=3)
    assert [(h.product, h.row) for h in hits] == [("a", 0), ("b", 2), ("c", 3)]
    assert [h.score for h in hits] == pytest.approx([1.0, 0.8, 0.7])


def test_top_products_looks_deeper_when_views_crowd_the_top() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 8))
    products = ["crowd"] * 400 + [f"p{i}" for i in range(100)]
    features[:400] = 10.0  # one product's 400 views outscore everything
    hits = top_products(_index(features, products), np.ones(8, dtype=np.float32), k=5)
    assert hits[0].product == "crowd" and len({h.product for h in hits}) == 5
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_top_products_rejects_bad_k_and_dimension() -> None:
    index = _index(np.eye(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="--k must be >= 1"):
        top_products(index, np.ones(3, dtype=np.float32), k=0)
    with pytest.raises(ValueError, match="features"):
        top_products(index, np.ones(4, dtype=np.float32), k=1)


def test_index_load_checks_its_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a search index"):
        SearchIndex.load(tmp_path)
    np.save(tmp_path / FEATURES_FILE, np.zeros((3, 4), dtype=np.float32))
    (tmp_path / ROWS_FILE).write_text('{"product": "a", "text": "t"}\n')
    meta = {"version": INDEX_VERSION, "rows": 3, "dim": 4}
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="disagree"):
        SearchIndex.load(tmp_path)


class _Images:
    def image(self, row: int) -> np.ndarray:
        return np.full((256, 256, 3), 40 * row, dtype=np.uint8)


def test_contact_sheet_draws_one_tile_per_hit(tmp_path: Path) -> None:
    hits = [
        Hit(row=i, product=f"SKU-{i}", text="t", score=0.5, itm=0.9 if i else None)
        for i in range(5)
    ]
    path = contact_sheet(_Images(), hits, "query: 'red'", tmp_path / "s.png", columns=4)
    with Image.open(path) as sheet:
        assert sheet.size[0] > 4 * 192 and sheet.size[1] > 2 * 192  # 4 + 1 tiles, two rows
        pixel = sheet.getpixel((6 + 96, 30 + 192 + 44 + 6 + 96))  # middle of the 5th tile
        assert pixel == (160, 160, 160)
    with pytest.raises(ValueError, match="no hits"):
        contact_sheet(_Images(), [], "q", tmp_path / "e.png")
