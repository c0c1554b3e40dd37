"""The synthetic catalogue's FashionIQ tree: release layout, ASINs, images, and triplets whose
target differs from the reference in one or two attributes (lavis_syncmask/data/synthetic)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lavis_syncmask.data.synthetic.fashioniq_writer import (
    FASHIONIQ_SUBCATEGORIES,
    SPLITS,
    write_fashioniq,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fiq") / "fashioniq"
    write_fashioniq(root, 10, np.random.default_rng(3))
    return root


def _load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def test_layout_asins_and_images(tree: Path) -> None:
    seen: set[str] = set()
    for category in FASHIONIQ_SUBCATEGORIES:
        for split in SPLITS:
            triplets = _load(tree / "captions" / f"cap.{category}.{split}.json")
            ids = _load(tree / "image_splits" / f"split.{category}.{split}.json")
            assert triplets and ids and len(set(ids)) == len(ids)
            assert not seen & set(ids), "an ASIN appears in two splits"
            seen |= set(ids)
            for entry in triplets:
                assert ("target" in entry) == (split != "test")
                assert len(entry["captions"]) == 2 and all(entry["captions"])
                for asin in (entry["candidate"], entry.get("target", entry["candidate"])):
                    assert asin in ids
    for asin in seen:
        assert re.fullmatch(r"B00[0-9A-Z]{7}", asin)
        with Image.open(tree / "images" / f"{asin}.png") as image:
            assert image.size == (256, 256) and image.mode == "RGB"


def test_targets_differ_in_one_or_two_attributes(tree: Path) -> None:
    attributes = _load(tree / "attributes.json")
    counts = []
    for category in FASHIONIQ_SUBCATEGORIES:
        for entry in _load(tree / "captions" / f"cap.{category}.val.json"):
            before = attributes[entry["candidate"]]["attributes"]
            after = attributes[entry["target"]]["attributes"]
            changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
            assert 1 <= len(changed) <= 2, (before, after)
            assert "category" not in changed and "back_detail" not in changed
            counts.append(len(changed))
    assert set(counts) == {1, 2}


def test_jpg_images_and_determinism(tmp_path: Path, tree: Path) -> None:
    write_fashioniq(tmp_path / "jpg", 10, np.random.default_rng(3), image_format="jpg")
    assert not list((tmp_path / "jpg" / "images").glob("*.png"))
    jpgs = sorted(p.stem for p in (tmp_path / "jpg" / "images").glob("*.jpg"))
    assert jpgs == sorted(p.stem for p in (tree / "images").glob("*.png"))
    name = "captions/cap.dress.train.json"
    assert (tmp_path / "jpg" / name).read_bytes() == (tree / name).read_bytes()
    with pytest.raises(ValueError, match="image_format"):
        write_fashioniq(tmp_path / "bad", 10, np.random.default_rng(3), image_format="gif")
