"""FashionIQ reader and datasets on a tiny release tree written here (.png and .jpg images, both
gallery conventions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lavis.processors.blip_processors import BlipImageEvalProcessor
from PIL import Image

from lavis_syncmask.data.fashioniq import (
    CATEGORIES,
    FashionIQ,
    FashionIQEvalSet,
    FashionIQGalleryDataset,
    FashionIQQueryDataset,
    FashionIQTripletDataset,
    join_captions,
)
from lavis_syncmask.data.images import TruncatedImageError
from lavis_syncmask.data.processors import SyncMaskTextProcessor

# Per category: train / val triplets and the val split file (which holds images no val
# triplet uses, and misses none of theirs).
TRIPLETS = {
    "train": [("A1", "A2", ["is red", "has  long sleeves"]), ("A2", "A3", ["is shorter", ""])],
    "val": [("B1", "B2", ["is blue", "is plain"]), ("B3", "B2", ["has a print", "is longer"])],
}
VAL_SPLIT = ["B4", "B2", "B1", "B3", "B5"]


def write_fashioniq(root: Path, categories: tuple[str, ...] = CATEGORIES) -> Path:
    """A FashionIQ tree; even-numbered ASINs are stored as .jpg, the others as .png."""
    (root / "captions").mkdir(parents=True)
    (root / "image_splits").mkdir()
    (root / "images").mkdir()
    asins: set[str] = set(VAL_SPLIT)
    for category in categories:
        prefix = category[0].upper()
        for split, triplets in TRIPLETS.items():
            entries = [
                {"candidate": prefix + c, "target": prefix + t, "captions": caps}
                for c, t, caps in triplets
            ]
            (root / "captions" / f"cap.{category}.{split}.json").write_text(json.dumps(entries))
            ids = sorted({e[k] for e in entries for k in ("candidate", "target")})
            if split == "val":
                ids = [prefix + a for a in VAL_SPLIT]
            (root / "image_splits" / f"split.{category}.{split}.json").write_text(json.dumps(ids))
            asins.update(ids)
    for asin in sorted(asins):
        suffix = ".jpg" if int(asin[-1]) % 2 == 0 else ".png"
        shade = (sum(map(ord, asin)) * 7) % 256
        Image.new("RGB", (40, 60), (shade, 0, 255 - shade)).save(
            root / "images" / f"{asin}{suffix}"
        )
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_fashioniq(tmp_path / "fashioniq")


def test_reader_accepts_png_and_jpg(root: Path) -> None:
    data = FashionIQ(root)
    assert data.image_path("DA1").suffix == ".png" and data.image_path("DA2").suffix == ".jpg"
    assert data.load_image("DA2").mode == "RGB" and data.load_image("DA1").size == (40, 60)
    with pytest.raises(FileNotFoundError, match=r"DZ9\.png nor .*DZ9\.jpg"):
        data.image_path("DZ9")
    with pytest.raises(FileNotFoundError, match=r"cap\.dress\.test\.json"):
        data.triplets("dress", "test")
    with pytest.raises(ValueError, match="category must be one of"):
        data.triplets("shoes", "train")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"missing_root.*`root`"):
        FashionIQ(root.parent / "missing_root")


def test_join_captions() -> None:
    assert join_captions(["is red", "has long sleeves"]) == "is red and has long sleeves"
    assert join_captions(["is shorter", " "]) == "is shorter"


def test_triplet_items_and_collate(root: Path) -> None:
    dataset = FashionIQTripletDataset(
        root,
        ["dress", "toptee"],
        "train",
        BlipImageEvalProcessor(image_size=16),
        SyncMaskTextProcessor(),
    )
    assert len(dataset) == 4
    item = dataset[0]
    assert item["text_input"] == "is red and has long sleeves"
    assert (item["reference_id"], item["target_id"], item["category"]) == ("DA1", "DA2", "dress")
    assert item["reference_image"].shape == (3, 16, 16)
    assert not torch.equal(item["reference_image"], item["target_image"])
    assert dataset[3]["category"] == "toptee" and dataset[3]["text_input"] == "is shorter"
    batch = dataset.collater([dataset[i] for i in range(4)])
    assert batch["target_image"].shape == (4, 3, 16, 16)
    assert batch["target_id"] == ["DA2", "DA3", "TA2", "TA3"]


@pytest.mark.parametrize(
    ("convention", "expected"),
    [("original", ["SB4", "SB2", "SB1", "SB3", "SB5"]), ("val_union", ["SB1", "SB2", "SB3"])],
)
def test_galleries_follow_their_convention(root: Path, convention: str, expected: list) -> None:
    gallery = FashionIQGalleryDataset(
        root, "shirt", convention, BlipImageEvalProcessor(image_size=8)
    )
    assert gallery.asins == expected and len(gallery) == len(expected)
    item = gallery[1]
    assert (
        item["image_id"] == expected[1] and item["index"] == 1 and item["image"].shape == (3, 8, 8)
    )
    queries = FashionIQQueryDataset(root, "shirt")
    assert set(queries.target_ids) <= set(gallery.asins)  # every query is answerable
    with pytest.raises(ValueError, match="gallery must be one of"):
        FashionIQGalleryDataset(root, "shirt", "everything")  # type: ignore[arg-type]


def test_query_dataset_and_eval_set(root: Path) -> None:
    proc = BlipImageEvalProcessor(image_size=8)
    queries = FashionIQQueryDataset(root, "dress", "val", proc, SyncMaskTextProcessor())
    assert queries.target_ids == ["DB2", "DB2"] and queries.reference_ids == ["DB1", "DB3"]
    item = queries[1]
    assert item["text_input"] == "has a print and is longer" and item["index"] == 1
    assert set(item) == {
        "reference_image",
        "text_input",
        "reference_id",
        "target_id",
        "index",
        "category",
    }
    evalset = FashionIQEvalSet(root, CATEGORIES, "val_union", proc, SyncMaskTextProcessor())
    assert len(evalset) == 6 and evalset.gallery == "val_union"
    assert [evalset[i]["category"] for i in range(6)] == ["dress"] * 2 + ["shirt"] * 2 + [
        "toptee"
    ] * 2
    assert evalset.galleries["toptee"].asins == ["TB1", "TB2", "TB3"]
    batch = evalset.collater([evalset[i] for i in range(3)])
    assert batch["reference_image"].shape == (3, 3, 8, 8) and batch["index"].tolist() == [0, 1, 0]
    reference = np.asarray(queries[0]["reference_image"])
    assert np.array_equal(np.asarray(evalset[0]["reference_image"]), reference)


def test_empty_captions_are_an_error(tmp_path: Path) -> None:
    root = write_fashioniq(tmp_path / "fiq", ("dress",))
    path = root / "captions" / "cap.dress.train.json"
    path.write_text(json.dumps([{"candidate": "DA1", "target": "DA2", "captions": ["", " "]}]))
    dataset = FashionIQTripletDataset(root, ["dress"])
    with pytest.raises(ValueError, match="dress triplet 0 has no non-empty caption"):
        dataset[0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("captions", "is shorter", r"'captions' must be a list of strings, got str"),
        ("captions", None, r"'captions' must be a list of strings, got NoneType"),
        ("captions", ["fine", 3], r"'captions' must be a list of strings"),
        ("candidate", 17, r"'candidate' must be a non-empty ASIN string, got int"),
        ("target", ["DA2"], r"'target' must be a non-empty ASIN string, got list"),
    ],
)
def test_caption_fields_are_type_checked(tmp_path: Path, field: str, value, message: str) -> None:
    """A string `captions` used to train on "i and s and ..."; null gave a bare TypeError."""
    root = write_fashioniq(tmp_path / "fiq", ("dress",))
    path = root / "captions" / "cap.dress.train.json"
    entries = json.loads(path.read_text())
    entries[1][field] = value
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=rf"cap\.dress\.train\.json: entry 1: {message}"):
        FashionIQTripletDataset(root, ["dress"])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_images_are_refused_whatever_the_global_flag(
    root: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LAVIS turns PIL's LOAD_TRUNCATED_IMAGES on for the whole process; PIL then pads a cut
    file with grey. The reader must refuse it without relying on that flag."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = FashionIQ(root)
    asin = next(p.stem for p in sorted((root / "images").glob(f"*{suffix}")))
    path = data.image_path(asin)
    # A noisy image, so the compressed data is long enough to cut in the middle.
    noise = np.random.default_rng(0).integers(0, 256, (60, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    whole = path.read_bytes()
    assert np.array_equal(np.asarray(data.load_image(asin)), np.asarray(Image.open(path)))
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with Image.open(path) as lenient:  # what PIL alone does under LAVIS's flag
        assert lenient.convert("RGB").size == (40, 60)
    with pytest.raises(TruncatedImageError, match=f"image {path} is truncated"):
        data.load_image(asin)
    path.write_bytes(b"")
    with pytest.raises(TruncatedImageError, match="empty"):
        data.load_image(asin)
