"""The synthetic FashionIQ tree: the real layout, consistent ASINs, targets that differ from
their reference in one or two attributes, PNG and JPEG images, determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lavis_syncmask.synthetic.fashioniq_writer import (
    ATTRIBUTES_FILE,
    FASHIONIQ_CATEGORIES,
    FASHIONIQ_SPLITS,
    captions,
    split_sizes,
    write_fashioniq,
)

TRIPLETS = 4


def write(root: Path, image_format: str = "png", seed: int = 0) -> dict:
    return write_fashioniq(root, TRIPLETS, np.random.default_rng(seed), image_format)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def png_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fashioniq")
    write(root)
    return root


def load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def test_layout_and_asins(png_tree: Path):
    for category in FASHIONIQ_CATEGORIES:
        for split in FASHIONIQ_SPLITS:
            triplets = load(png_tree / "captions" / f"cap.{category}.{split}.json")
            split_ids = load(png_tree / "image_splits" / f"split.{category}.{split}.json")
            assert isinstance(triplets, list) and len(triplets) == split_sizes(TRIPLETS)[split]
            assert len(split_ids) == len(set(split_ids)) > 2 * len(triplets)
            for entry in triplets:
                assert ("target" in entry) == (split != "test")
                assert len(entry["captions"]) == 2 and all(c.strip() for c in entry["captions"])
                for asin in (entry["candidate"], entry.get("target", entry["candidate"])):
                    assert re.fullmatch(r"B00[0-9A-Z]{7}", asin)
                    assert asin in split_ids
                    assert (png_tree / "images" / f"{asin}.png").exists()


def test_targets_differ_in_one_or_two_attributes(png_tree: Path):
    truth = load(png_tree / ATTRIBUTES_FILE)
    for category in FASHIONIQ_CATEGORIES:
        for split in ("train", "val"):
            for entry in load(png_tree / "captions" / f"cap.{category}.{split}.json"):
                ref, tgt = truth[entry["candidate"]], truth[entry["target"]]
                assert ref["category"] == tgt["category"] == category
                a, b = ref["attributes"], tgt["attributes"]
                changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
                assert 1 <= len(changed) <= 2, (entry, changed)
                assert "category" not in changed
                ref_image = np.asarray(
                    Image.open(png_tree / "images" / f"{entry['candidate']}.png")
                )
                assert ref_image.shape == (256, 256, 3)


def test_captions_describe_every_change():
    rng = np.random.default_rng(0)
    for _ in range(20):
        one, two = captions([("colour", "navy", "red")], rng)
        assert "red" in one and "red" in two
        both = " | ".join(
            captions([("sleeves", "short", "long"), ("pattern", None, "stripes")], rng)
        )
        assert "sleeves" in both and ("stripe" in both)
        removed = " ".join(captions([("front_print", "logo", None)], rng))
        assert "no graphic" in removed or "plain" in removed


def test_jpeg_release_and_determinism(tmp_path: Path, png_tree: Path):
    write(tmp_path / "jpg", image_format="jpg")
    images = sorted((tmp_path / "jpg" / "images").iterdir())
    assert images and all(p.suffix == ".jpg" for p in images)
    assert Image.open(images[0]).format == "JPEG"
    write(tmp_path / "again")
    for name in (
        "captions/cap.dress.train.json",
        "image_splits/split.toptee.val.json",
        ATTRIBUTES_FILE,
    ):
        assert (tmp_path / "again" / name).read_bytes() == (png_tree / name).read_bytes()
    write(tmp_path / "other", seed=1)
    assert (tmp_path / "other" / ATTRIBUTES_FILE).read_bytes() != (
        png_tree / ATTRIBUTES_FILE
    ).read_bytes()


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(ValueError, match="fashioniq_triplets"):
        split_sizes(0)
    with pytest.raises(ValueError, match="gif"):
        write(tmp_path / "gif", image_format="gif")
