"""FashionGen h5 reader, visibility sidecar, `syncmask_text` and the FashionGen datasets, on tiny
files written here in the real schema ((N, 1) Latin-1 byte strings, consecutive product rows)."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import pytest
import torch
from lavis.common.registry import registry
from lavis.processors.blip_processors import (
    BlipCaptionProcessor,
    BlipImageEvalProcessor,
    BlipImageTrainProcessor,
)
from lavis.tasks.retrieval import RetrievalTask
from torch.utils.data import DataLoader

import lavis_syncmask.data.fashiongen as fashiongen_module
from lavis_syncmask.data.fashiongen import (
    FashionGenFileError,
    FashionGenH5,
    FashionGenKeyError,
    row_text,
)
from lavis_syncmask.data.fashiongen_datasets import (
    FashionGenPretrainDataset,
    FashionGenRetrievalDataset,
)
from lavis_syncmask.data.fashiongen_recognition import (
    FashionGenRecognitionDataset,
    default_label_map_path,
    load_or_create_label_map,
)
from lavis_syncmask.data.processors import SyncMaskTextProcessor
from lavis_syncmask.data.visibility import VisibilitySidecar, fingerprint_header, sidecar_path

# (product id, name, description, category, subcategory, number of views); two products share
# a description (near-duplicates), one has irregular whitespace and Latin-1 text.
PRODUCTS = [
    (11, "Red shirt", "Red cotton shirt with appliqué  pocket.", "TOPS", "SHIRTS", 2),
    (12, "Blue jeans", "Blue denim jeans with  zip\tclosure at back.", "PANTS", "JEANS", 3),
    (13, "Red shirt", "Red cotton shirt with appliqué  pocket.", "TOPS", "SHIRTS", 1),
    (14, "Black coat", "Black wool coat with notched lapels.", "JACKETS & COATS", "COATS", 2),
]
# Attribute named by a word (lowercased, punctuation stripped), and its patches.
ATTRIBUTES = {
    "red": "colour",
    "blue": "colour",
    "black": "colour",
    "pocket": "pocket",
    "zip": "closure",
    "lapels": "lapels",
    "denim": "fabric",
    "shirt": "garment",
}


def _patches(attribute: str, view: int) -> list[int]:
    base = sorted(ATTRIBUTES.values()).index(attribute) * 16
    return list(range(base + view, base + view + 5))


def _rows(products: list[tuple]) -> list[tuple]:
    return [(*p[:5], v) for p in products for v in range(p[5])]


def write_fashiongen_h5(
    path: Path,
    products: list[tuple] = PRODUCTS,
    string_shape: Literal["N1", "N"] = "N1",
    image_shape: tuple[int, int, int] = (256, 256, 3),
    sidecar: bool = True,
) -> Path:
    """A FashionGen h5 in the real schema (plus its visibility sidecar when `sidecar`)."""
    rows = _rows(products)
    n = len(rows)

    def strings(values: list[str]) -> np.ndarray:
        data = np.asarray([v.encode("latin-1") for v in values], dtype="S")
        return data.reshape(n, 1) if string_shape == "N1" else data

    images = np.zeros((n, *image_shape), dtype=np.uint8)
    for i in range(n):
        images[i] = (i * 17) % 251  # a distinct constant image per row
    with h5py.File(path, "w") as h5:
        h5["input_image"] = images
        for key, column in (
            ("input_name", 1),
            ("input_description", 2),
            ("input_category", 3),
            ("input_subcategory", 4),
        ):
            h5[key] = strings([r[column] for r in rows])
        h5["input_pose"] = strings([f"id_{r[5]}" for r in rows])
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        h5["input_productID"] = ids.reshape(n, 1) if string_shape == "N1" else ids
    if sidecar:
        write_sidecar(path, rows)
    return path


def _word_visible(word: str, view: int) -> bool:
    return (len(word) + view) % 3 != 0  # deterministic mix of visible and invisible words


def write_sidecar(h5_path: Path, rows: list[tuple]) -> Path:
    out = sidecar_path(h5_path)
    columns = {
        "input_description": [r[2] for r in rows],
        "input_name": [r[1] for r in rows],
    }
    with open(out, "w", encoding="utf-8") as f:
        f.write(fingerprint_header(columns) + "\n")
        for row, (pid, name, description, _, _, view) in enumerate(rows):
            words, named = {}, set()
            for key, text in (("input_name", name), ("input_description", description)):
                words[key] = []
                for m in re.finditer(r"\S+", text):
                    attr = ATTRIBUTES.get(re.sub(r"\W", "", m.group()).lower())
                    visible = _word_visible(m.group(), view)
                    words[key].append([m.start(), m.end(), visible, attr])
                    if visible and attr:
                        named.add(attr)
            # Attributes visible in the view; one extra not named by any word.
            attributes = {a: _patches(a, view) for a in sorted(named | {"lapels"})}
            record = {
                "row": row,
                "product_id": pid,
                "pose": f"id_{view}",
                "words": words,
                "attributes": attributes,
            }
            f.write(json.dumps(record) + "\n")
    return out


@pytest.fixture
def h5_path(tmp_path: Path) -> Path:
    return write_fashiongen_h5(tmp_path / "fashiongen_256_256_train.h5")


# ---------------------------------------------------------------- reader


@pytest.mark.parametrize("string_shape", ["N1", "N"])
def test_reader_decodes_latin1_in_both_shapes(tmp_path: Path, string_shape: str) -> None:
    path = write_fashiongen_h5(tmp_path / "x.h5", string_shape=string_shape, sidecar=False)
    with h5py.File(path) as h5:  # the fixture really stores byte 0xE9 for "é"
        assert b"appliqu\xe9" in bytes(h5["input_description"][0].reshape(-1)[0])
    reader = FashionGenH5(path)
    assert len(reader) == 8
    assert reader.strings("input_description")[0] == "Red cotton shirt with appliqué  pocket."
    assert reader.strings("input_category")[6] == "JACKETS & COATS"
    assert reader.product_ids().tolist() == [11, 11, 12, 12, 12, 13, 14, 14]
    assert reader.product_ids().dtype == np.int64
    assert reader.image(3).shape == (256, 256, 3) and reader.image(3).dtype == np.uint8
    assert int(reader.image(3)[0, 0, 0]) == 51


def test_text_fields_join_name_first(h5_path: Path) -> None:
    reader = FashionGenH5(h5_path)
    assert row_text(reader, 6, "name") == "Black coat"
    assert row_text(reader, 6, "description") == "Black wool coat with notched lapels."
    joined = row_text(reader, 6, "name+description")
    assert joined == "Black coat Black wool coat with notched lapels."
    assert reader.texts("name+description")[6] == joined
    with pytest.raises(ValueError, match="text_fields must be one of"):
        reader.texts("title")  # type: ignore[arg-type]


def test_reader_is_lazy_and_reopens_after_fork(h5_path: Path, monkeypatch) -> None:
    dataset = FashionGenPretrainDataset(h5_path)
    assert dataset.reader._h5 is None  # building the dataset left no handle behind
    first = dataset[0]["image"]
    handle = dataset.reader._h5
    assert handle is not None and dataset[1] is not None and dataset.reader._h5 is handle
    monkeypatch.setattr(fashiongen_module.os, "getpid", lambda: -12345)  # as in a forked child
    assert torch.equal(dataset[0]["image"], first)
    assert dataset.reader._h5 is not handle and dataset.reader._pid == -12345


def test_dataloader_worker_and_pickle_after_parent_opened(h5_path: Path) -> None:
    dataset = FashionGenPretrainDataset(h5_path)
    expected = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    clone = pickle.loads(pickle.dumps(dataset))  # spawn-style workers pickle the dataset
    assert clone.reader._h5 is None and torch.equal(clone[2]["image"], expected[2])
    loader = DataLoader(dataset, batch_size=4, num_workers=1, collate_fn=dataset.collater)
    images = torch.cat([batch["image"] for batch in loader])
    assert torch.equal(images, expected)


def test_clear_errors(tmp_path: Path, h5_path: Path) -> None:
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match=r"nope\.h5.*build_info\.storage\.val"):
        FashionGenH5(missing, "build_info.storage.val")
    with pytest.raises(FashionGenKeyError) as err:
        FashionGenH5(h5_path).strings("input_brand")
    message = str(err.value)
    assert "input_brand" in message and str(h5_path) in message and "input_pose" in message
    small = write_fashiongen_h5(tmp_path / "small.h5", image_shape=(64, 64, 3), sidecar=False)
    with pytest.raises(ValueError, match=r"\(64, 64, 3\).*expected uint8 \(256, 256, 3\)"):
        FashionGenH5(small).image(0)
    products = [*PRODUCTS[:2], (15, "", "   ", "TOPS", "SHIRTS", 1)]
    empty = write_fashiongen_h5(tmp_path / "empty.h5", products, sidecar=False)
    with pytest.raises(ValueError, match=r"empty training text.*first row 5"):
        FashionGenPretrainDataset(empty)
    with pytest.raises(ValueError, match="row 5 has an empty training text"):
        row_text(FashionGenH5(empty), 5, "name+description")


# ---------------------------------------------------------------- text processor + sidecar


def test_syncmask_text_processor_keeps_offsets() -> None:
    proc = registry.get_processor_class("syncmask_text").from_config(None)
    assert isinstance(proc, SyncMaskTextProcessor) and proc.max_words == 60
    text = "  Zip\tclosure  at\n back. "
    out, spans = SyncMaskTextProcessor(max_words=3).with_spans(text, [(2, 5), (6, 13), (19, 24)])
    assert out == "Zip closure at" and proc(text) == "Zip closure at back."
    assert [out[a:b] for a, b in spans] == ["Zip", "closure"]  # "back." was truncated away
    with pytest.raises(ValueError, match="outside the text"):
        proc.with_spans("abc", [(1, 9)])
    with pytest.raises(ValueError, match="unknown config key"):
        SyncMaskTextProcessor.from_config({"name": "syncmask_text", "prompt": "a "})


@pytest.mark.parametrize("text_fields", ["description", "name+description"])
def test_visible_spans_slice_back_to_visible_words(h5_path: Path, text_fields: str) -> None:
    dataset = FashionGenPretrainDataset(
        h5_path, text_processor=SyncMaskTextProcessor(), text_fields=text_fields
    )
    for row, (_, name, description, _, _, view) in enumerate(_rows(PRODUCTS)):
        parts = [description] if text_fields == "description" else [name, description]
        words = [w for part in parts for w in part.split()]
        item = dataset[row]
        assert item["text_input"] == " ".join(words)
        got = [item["text_input"][a:b] for a, b in item["visible_spans"]]
        assert got == [w for w in words if _word_visible(w, view)]
        raw = dataset.raw_texts[row]
        raw_spans = dataset.sidecar.visible_spans(row, text_fields)
        assert [raw[a:b] for a, b in raw_spans] == got


def test_described_patches_are_union_of_named_visible_attributes(h5_path: Path) -> None:
    sidecar = VisibilitySidecar(sidecar_path(h5_path))
    rows = _rows(PRODUCTS)
    for row, (_, _, description, _, _, view) in enumerate(rows):
        named = {
            ATTRIBUTES[re.sub(r"\W", "", w).lower()]
            for w in description.split()
            if re.sub(r"\W", "", w).lower() in ATTRIBUTES and _word_visible(w, view)
        }
        expected = np.zeros(256, dtype=bool)
        for attribute in named:
            expected[_patches(attribute, view)] = True
        grid = sidecar.described_patches(row, "description")
        assert grid.shape == (16, 16) and grid.dtype == bool
        assert np.array_equal(grid.reshape(-1), expected)
        if "lapels" not in named:  # listed in the view but named by no visible word
            assert not grid.reshape(-1)[_patches("lapels", view)].any()


def test_sidecar_errors(tmp_path: Path, h5_path: Path) -> None:
    header, *lines = sidecar_path(h5_path).read_text().splitlines()
    bad = tmp_path / "swapped.jsonl"
    bad.write_text("\n".join([header, lines[1], lines[0], *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match="records must be one per h5 row"):
        VisibilitySidecar(bad).record(0)
    with pytest.raises(ValueError, match="7 records but its h5 has 8 rows"):
        bad.write_text("\n".join([header, *lines[:7]]) + "\n")
        FashionGenPretrainDataset(h5_path, sidecar=bad)
    with pytest.raises(ValueError, match="needs the texts"):
        VisibilitySidecar(sidecar_path(h5_path)).visible_spans(0, "name+description")


# ---------------------------------------------------------------- datasets


def test_pretrain_items_and_collate(h5_path: Path) -> None:
    dataset = FashionGenPretrainDataset(
        h5_path, BlipImageEvalProcessor(image_size=32), SyncMaskTextProcessor()
    )
    item = dataset[4]
    assert set(item) == {
        "image",
        "text_input",
        "image_id",
        "product_id",
        "text_id",
        "category",
        "subcategory",
        "visible_spans",
        "described_patches",
    }
    assert item["image"].shape == (3, 32, 32) and item["image_id"] == 4
    assert item["product_id"] == 12 and dataset[5]["product_id"] == 13
    assert dataset[0]["text_id"] == dataset[5]["text_id"] != dataset[2]["text_id"]  # same text
    assert [dataset[r]["category"] for r in (0, 2, 6)] == [2, 1, 0]  # sorted category names
    batch = dataset.collater([dataset[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 32, 32) and batch["described_patches"].shape == (
        3,
        16,
        16,
    )
    assert batch["described_patches"].dtype == torch.bool
    assert batch["product_id"].tolist() == [11, 11, 12] and batch["text_id"].dtype == torch.int64
    assert isinstance(batch["visible_spans"], list) and len(batch["visible_spans"]) == 3
    assert batch["visible_spans"][2] == dataset[2]["visible_spans"]
    assert isinstance(batch["text_input"], list)
    # TF-IDF cosine of the batch's texts, for the ITM loss's near-duplicate rule.
    pair = dataset.collater([dataset[0], dataset[5], dataset[2]])["text_similarity"]
    assert pair.shape == (3, 3) and pair.dtype == torch.float32
    assert pair[0, 1] == pytest.approx(1.0) and pair[0, 2] < 0.9  # rows 0 and 5: same text


def test_sidecar_fields_follow_processors(h5_path: Path) -> None:
    rewriting = FashionGenPretrainDataset(h5_path, None, BlipCaptionProcessor())
    assert "visible_spans" not in rewriting[0] and "described_patches" not in rewriting[0]
    assert rewriting[0]["text_input"] == "red cotton shirt with appliqué pocket"
    cropping = FashionGenPretrainDataset(h5_path, BlipImageTrainProcessor(image_size=32))
    assert "visible_spans" in cropping[0] and "described_patches" not in cropping[0]
    forced = FashionGenPretrainDataset(h5_path, described_patches=False)
    assert "described_patches" not in forced[0]
    none = FashionGenPretrainDataset(h5_path, sidecar=None)
    assert "visible_spans" not in none[0]


def test_sampler_metadata_reads_no_image(h5_path: Path, monkeypatch) -> None:
    dataset = FashionGenPretrainDataset(h5_path)
    monkeypatch.setattr(FashionGenH5, "image", lambda *_: pytest.fail("read an image"))
    meta = dataset.sampler_metadata()
    assert meta["product_ids"].dtype == np.int64 and meta["product_ids"].tolist()[:3] == [
        11,
        11,
        12,
    ]
    assert meta["texts"][6] == "Black wool coat with notched lapels."
    assert (
        meta["subcategories"].tolist()
        == ["SHIRTS"] * 2 + ["JEANS"] * 3 + ["SHIRTS"] + ["COATS"] * 2
    )
    assert meta["categories"][6] == "JACKETS & COATS" and len(meta["texts"]) == len(dataset)


def test_retrieval_dataset_structures_work_with_lavis(
    tmp_path: Path, h5_path: Path, monkeypatch
) -> None:
    dataset = FashionGenRetrievalDataset(h5_path, text_processor=SyncMaskTextProcessor())
    assert dataset.text == [
        "Red cotton shirt with appliqué pocket.",
        "Blue denim jeans with zip closure at back.",
        "Red cotton shirt with appliqué pocket.",
        "Black wool coat with notched lapels.",
    ]
    assert dataset.row_product.tolist() == [0, 0, 1, 1, 1, 2, 3, 3]
    assert dataset.img2txt[4] == [1] and dataset.txt2img == [0, 2, 5, 6]
    assert dataset.product_rows == {11: [0, 1], 12: [2, 3, 4], 13: [5], 14: [6, 7]}
    assert dataset.text_rows[1] == [2, 3, 4]
    assert dataset.product_subcategory == {11: "SHIRTS", 12: "JEANS", 13: "SHIRTS", 14: "COATS"}
    assert dataset.subcategory_products == {"SHIRTS": [11, 13], "JEANS": [12], "COATS": [14]}
    item = dataset[3]
    assert set(item) == {"image", "index", "image_id", "product_id"} and item["product_id"] == 12
    i2t = np.full((8, 4), -1.0)
    i2t[np.arange(8), dataset.row_product] = 1.0
    t2i = np.full((4, 8), -1.0)
    t2i[np.arange(4), dataset.txt2img] = 1.0
    # LAVIS appends its metrics to <output_dir>/evaluate.txt; restored after the test.
    monkeypatch.setitem(registry.mapping["paths"], "output_dir", str(tmp_path))
    metrics = RetrievalTask._report_metrics(i2t, t2i, dataset.txt2img, dataset.img2txt)
    assert metrics["txt_r1"] == 100.0 and metrics["img_r1"] == 100.0


def test_recognition_label_map_stable_saved_and_checked(tmp_path: Path, h5_path: Path) -> None:
    saved = default_label_map_path(h5_path, "category")
    label_map = load_or_create_label_map(h5_path, "category")
    assert list(label_map) == ["JACKETS & COATS", "PANTS", "TOPS"] and saved.exists()
    stored = json.loads(saved.read_text(encoding="utf-8"))
    assert stored["labels"] == list(label_map) and stored["label_key"] == "category"
    stored["labels"] = ["TOPS", "PANTS", "JACKETS & COATS", "BAGS"]  # an existing map is reused
    saved.write_text(json.dumps(stored), encoding="utf-8")
    reused = load_or_create_label_map(h5_path, "category")
    assert reused["TOPS"] == 0 and len(reused) == 4
    dataset = FashionGenRecognitionDataset(h5_path, reused, label_key="category")
    assert [dataset[i]["label"] for i in (0, 2, 6)] == [0, 1, 2]
    batch = dataset.collater([dataset[i] for i in range(2)])
    assert batch["label"].dtype == torch.int64 and set(batch) == {
        "image",
        "text_input",
        "label",
        "image_id",
    }
    val = write_fashiongen_h5(
        tmp_path / "val.h5",
        [*PRODUCTS[:2], (20, "Bag", "A bag.", "BAGS", "TOTES", 1)],
        sidecar=False,
    )
    with pytest.raises(ValueError, match=r"never seen in train: \['TOTES'\].*unseen_labels: drop"):
        FashionGenRecognitionDataset(val, load_or_create_label_map(h5_path, "subcategory"))
    dropped = FashionGenRecognitionDataset(
        val, load_or_create_label_map(h5_path, "subcategory"), unseen_labels="drop"
    )
    assert len(dropped) == 5 and dropped.dropped_rows.tolist() == [5]
    with pytest.raises(ValueError, match="is for label_key='category', not 'subcategory'"):
        load_or_create_label_map(h5_path, "subcategory", saved)


def test_sidecar_of_another_h5_version_is_refused(tmp_path: Path, h5_path: Path) -> None:
    """A sidecar left from an earlier h5 (same row count, other texts) used to be read as is."""
    stale = sidecar_path(h5_path).read_text()
    first = PRODUCTS[0]
    edited = [(*first[:2], first[2] + " edited", *first[3:]), *PRODUCTS[1:]]  # same row count
    other = write_fashiongen_h5(tmp_path / "other.h5", edited, sidecar=False)
    sidecar_path(other).write_text(stale)
    with pytest.raises(ValueError, match=r"does not describe .*other\.h5") as err:
        FashionGenPretrainDataset(other, text_processor=SyncMaskTextProcessor())
    assert "other_visibility.jsonl" in str(err.value)
    # No fingerprint at all (an old generator): refused too, naming both files.
    sidecar_path(other).write_text("\n".join(stale.splitlines()[1:]) + "\n")
    with pytest.raises(ValueError, match="carries no fingerprint of the rows of .*other.h5"):
        FashionGenPretrainDataset(other)
    # The matching sidecar still loads.
    assert FashionGenPretrainDataset(h5_path).sidecar is not None


@pytest.mark.parametrize("keep", [0, 0.5])
def test_empty_or_truncated_h5_names_the_file(tmp_path: Path, h5_path: Path, keep: float) -> None:
    """h5py's own OSError for these names no file."""
    data = h5_path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FashionGenFileError, match=r"cut\.h5 \(config key `h5_path`, \d+ bytes\)"):
        dataset = FashionGenPretrainDataset(cut, sidecar=None)
        for row in range(len(dataset)):  # a cut that keeps the metadata fails on an image
            dataset[row]
