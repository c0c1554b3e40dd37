"""Your own catalogue: the CSV / JSONL reader (bad rows as a clear error or a counted skip,
unknown columns, grouping by product), the `fashion_catalogue` builder, and the converter to
the FashionGen h5 layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from catalogue_fixtures import write_catalogue
from omegaconf import OmegaConf

import lavis_syncmask  # noqa: F401  (registers fashion_catalogue)
from lavis_syncmask.cli.convert import main as convert_main
from lavis_syncmask.data.catalogue import CatalogueError, CatalogueReader, read_catalogue_rows
from lavis_syncmask.data.catalogue_builder import FashionCatalogueBuilder
from lavis_syncmask.data.catalogue_h5 import convert_catalogue
from lavis_syncmask.data.fashiongen import FashionGenH5
from lavis_syncmask.data.fashiongen_datasets import (
    FashionGenPretrainDataset,
    FashionGenRetrievalDataset,
)
from lavis_syncmask.data.formats import PRODUCT_KEY_KEY


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalogue(tmp_path_factory.mktemp("shop"), (6, 3))


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_and_jsonl_read_the_same_rows(shop: Path) -> None:
    a = CatalogueReader(shop / "train.csv", shop / "images")
    b = CatalogueReader(shop / "train.jsonl", shop / "images")
    assert len(a) == len(b) == 12 and a.texts() == b.texts()
    assert a.product_keys[:2] == ["SKU-0000", "SKU-0000"]
    assert a.product_ids().tolist()[:4] == [0, 0, 1, 1]  # non-integer ids become codes
    assert a.strings("input_subcategory")[0] == "shirts"
    image = a.image(0)  # 300 x 400 source: padded with white, not stretched
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert (image[:, :10] == 255).all()


def test_rows_are_grouped_by_product_and_optional_columns_default(
    tmp_path: Path, shop: Path
) -> None:
    images = shop / "images"
    table = _write_csv(
        tmp_path / "t.csv",
        ["image", "text", "product_id"],
        [["p0_0.jpg", "red shirt", "7"], ["p1_0.jpg", "red dress", "3"], ["p0_1.jpg", "red shirt", "7"]],
    )  # fmt: skip
    reader = CatalogueReader(table, images)
    assert reader.product_ids().tolist() == [7, 7, 3]  # integer ids are kept
    assert reader.strings("input_category") == ["unspecified"] * 3


@pytest.mark.parametrize(
    ("header", "row", "reason"),
    [
        (["image", "text", "product_id"], ["missing.jpg", "red shirt", "1"], "does not exist"),
        (["image", "text", "product_id"], ["p0_0.jpg", "red, shirt", "1", "extra"], "4 fields"),
        (["image", "text", "product_id"], ["p0_0.jpg", "", "1"], "empty `text`"),
        (["image", "text", "product_id"], ["p0_0.jpg", "red ☂ shirt", "1"], "Latin-1"),
    ],
)
def test_bad_row_is_an_error_naming_line_or_a_counted_skip(
    tmp_path: Path, shop: Path, header: list[str], row: list[str], reason: str
) -> None:
    good = ["p1_0.jpg", "red dress", "2"]
    table = _write_csv(tmp_path / "t.csv", header, [good, row, good])
    with pytest.raises(CatalogueError, match=rf"t\.csv, line 3: .*{reason}.*on_bad_row: skip"):
        read_catalogue_rows(table, shop / "images")
    rows, skipped = read_catalogue_rows(table, shop / "images", on_bad_row="skip")
    assert len(rows) == 2 and [line for line, _ in skipped] == [3]
    assert reason in skipped[0][1]


def test_unknown_or_missing_column_lists_the_valid_ones(tmp_path: Path, shop: Path) -> None:
    table = _write_csv(tmp_path / "t.csv", ["image", "text", "product_id", "colour"], [])
    with pytest.raises(CatalogueError, match=r"unknown column\(s\) \['colour'\].*valid columns"):
        CatalogueReader(table, shop / "images", on_bad_row="skip")  # never a per-row skip
    table = _write_csv(tmp_path / "u.csv", ["image", "text"], [])
    with pytest.raises(CatalogueError, match=r"missing column\(s\) \['product_id'\]"):
        CatalogueReader(table, shop / "images")
    jsonl = tmp_path / "v.jsonl"
    jsonl.write_text(
        json.dumps({"image": "p0_0.jpg", "text": "x", "product_id": 1, "size": "M"}) + "\n"
    )
    with pytest.raises(CatalogueError, match=r"v\.jsonl, line 1: unknown column"):
        CatalogueReader(jsonl, shop / "images")


def test_invalid_json_line_and_nothing_usable(tmp_path: Path, shop: Path) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"image": "p0_0.jpg", "text": "red", "product_id": "a"}\n{"image": \n')
    with pytest.raises(CatalogueError, match="line 2: invalid JSON"):
        CatalogueReader(jsonl, shop / "images")
    assert len(CatalogueReader(jsonl, shop / "images", on_bad_row="skip")) == 1
    jsonl.write_text('{"image": \n')
    with pytest.raises(CatalogueError, match="no usable row"):
        CatalogueReader(jsonl, shop / "images", on_bad_row="skip")


def _builder(shop: Path, **options: object) -> FashionCatalogueBuilder:
    storage = {"train": "train.csv", "val": "val.jsonl", "images": "images"}
    cfg = {"data_root": str(shop), "build_info": {"storage": storage}, **options}
    return FashionCatalogueBuilder(OmegaConf.create(cfg))


def test_builder_modes(shop: Path) -> None:
    datasets = _builder(shop).build_datasets()
    assert isinstance(datasets["val"], FashionGenPretrainDataset)
    item = datasets["train"][0]
    assert item["image"].shape == (3, 256, 256) and item["text_input"] == "A red shirt in cotton."
    assert datasets["train"].sampler_metadata()["product_ids"].shape == (12,)
    val = _builder(shop, mode="retrieval").build_datasets()["val"]
    assert isinstance(val, FashionGenRetrievalDataset)
    assert len(val.text) == 3 and len(val) == 6 and val.txt2img == [0, 2, 4]


def test_builder_rejects_bad_settings(shop: Path) -> None:
    with pytest.raises(ValueError, match="fashion_catalogue.mode"):
        _builder(shop, mode="finetune").build_datasets()
    with pytest.raises(ValueError, match="unknown datasets.fashion_catalogue"):
        _builder(shop, colour="red")
    with pytest.raises(FileNotFoundError, match=r"storage\.train"):
        FashionCatalogueBuilder(OmegaConf.create({
            "data_root": str(shop), "build_info": {"storage": {"train": "nope.csv", "val": None}},
        })).build_datasets()  # fmt: skip


def test_converter_writes_fashiongen_layout(tmp_path: Path, shop: Path) -> None:
    out = tmp_path / "h5" / "train.h5"
    assert convert_main(["--table", str(shop / "train.csv"), "--images", str(shop / "images"),
                         "--out", str(out), "--quiet"]) == 0  # fmt: skip
    h5, table = FashionGenH5(out), CatalogueReader(shop / "train.csv", shop / "images")
    assert len(h5) == 12 and np.array_equal(h5.image(5), table.image(5))
    assert h5.texts("description") == table.texts()
    assert h5.strings(PRODUCT_KEY_KEY) == table.product_keys
    assert np.array_equal(h5.product_ids(), table.product_ids())
    # The h5 feeds the FashionGen datasets directly.
    dataset = FashionGenRetrievalDataset(out)
    assert len(dataset.text) == 6


def test_converter_unreadable_image_error_or_counted_skip(tmp_path: Path, shop: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "ok.jpg").write_bytes((shop / "images" / "p0_0.jpg").read_bytes())
    table = _write_csv(
        tmp_path / "t.csv", ["image", "text", "product_id"],
        [["ok.jpg", "red shirt", "1"], ["broken.jpg", "blue shirt", "2"]],
    )  # fmt: skip
    with pytest.raises(CatalogueError, match=r"line 3: cannot read image .*broken\.jpg"):
        convert_catalogue(table, tmp_path / "a.h5", progress=False)
    assert not (tmp_path / "a.h5").exists()
    written, skipped = convert_catalogue(
        table, tmp_path / "b.h5", on_bad_row="skip", progress=False
    )
    assert (written, skipped) == (1, 1) and len(FashionGenH5(tmp_path / "b.h5")) == 1
