"""Reliability, round two (issue 20), catalogue rows checked as data: product ids that would
merge, a column named twice, a JSONL text that is not a string, the table's encoding; and the
`fashion_catalogue` builder's `encoding` key and train / val check. Each case was silently
wrong or a bare traceback before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from catalogue_fixtures import draw_product
from omegaconf import OmegaConf

import lavis_syncmask  # noqa: F401  (registers fashion_catalogue)
from lavis_syncmask.cli.convert import main as convert_main
from lavis_syncmask.data.catalogue import CatalogueError, CatalogueReader, read_catalogue_rows
from lavis_syncmask.data.catalogue_builder import FashionCatalogueBuilder


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for name in ("a", "b", "c"):
        draw_product("red", "shirt", (60, 80)).save(folder / f"{name}.jpg")
    return folder


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_ids_that_differ_as_text_but_merge_as_integers_name_both_rows(
    tmp_path: Path, images: Path
) -> None:
    table = _write(tmp_path / "t.csv", "image,text,product_id\na.jpg,red,7\nb.jpg,blue,3\n"
                   "c.jpg,green,007\n")  # fmt: skip
    with pytest.raises(CatalogueError, match=r"'7' \(line 2\) and '007' \(line 4\).*integer 7"):
        read_catalogue_rows(table, images)
    # Text ids that are not all integers are compared as text: 7 and 007 stay two products.
    _write(table, "image,text,product_id\na.jpg,red,7\nb.jpg,blue,007\nc.jpg,green,x7\n")
    assert len(set(CatalogueReader(table, images).product_ids().tolist())) == 3
    # An integer id too long for int64 is text too (it raised OverflowError).
    _write(table, "image,text,product_id\na.jpg,red,7\nb.jpg,blue,123456789012345678901234\n")
    assert CatalogueReader(table, images).product_ids().tolist() == [0, 1]


def test_a_column_named_twice_is_an_error(tmp_path: Path, images: Path) -> None:
    table = _write(tmp_path / "t.csv", "image,text,product_id,text\na.jpg,red,1,blue\n")
    with pytest.raises(CatalogueError, match=r"t\.csv header: column\(s\) \['text'\] appear"):
        read_catalogue_rows(table, images, on_bad_row="skip")  # a table error, never a skip
    jsonl = _write(tmp_path / "t.jsonl", '{"image": "a.jpg", "text": "a", "text": "b", '
                   '"product_id": "1"}\n')  # fmt: skip
    with pytest.raises(CatalogueError, match=r"t\.jsonl, line 1: key\(s\) \['text'\]"):
        read_catalogue_rows(jsonl, images)


def test_jsonl_text_must_be_a_string(tmp_path: Path, images: Path) -> None:
    rows = [
        {"image": "a.jpg", "text": "red shirt", "product_id": 1},  # an integer id is fine
        {"image": "b.jpg", "text": ["blue", "shirt"], "product_id": "2"},
    ]
    table = _write(tmp_path / "t.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(CatalogueError, match=r"line 2: `text` must be a string, got a JSON list"):
        read_catalogue_rows(table, images)
    kept, skipped = read_catalogue_rows(table, images, on_bad_row="skip")
    assert [r.text for r in kept] == ["red shirt"] and [line for line, _ in skipped] == [2]


def test_encoding_error_names_file_and_line_and_can_be_declared(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture
) -> None:
    text = "image,text,product_id\na.jpg,red shirt,1\nb.jpg,blue café dress,2\n"
    table = _write(tmp_path / "excel.csv", text, "cp1252")
    with pytest.raises(CatalogueError, match=r"excel\.csv, line 3: byte b'\\xe9' is not valid"):
        read_catalogue_rows(table, images)
    rows, _ = read_catalogue_rows(table, images, encoding="cp1252")
    assert rows[1].text == "blue café dress"
    # A byte-order mark is detected: UTF-16 from a spreadsheet export reads as is.
    utf16 = _write(tmp_path / "u16.csv", text, "utf-16")
    assert [r.text for r in read_catalogue_rows(utf16, images)[0]] == [r.text for r in rows]
    # The converter: a one-line error, then --encoding.
    base = ["--table", str(table), "--images", str(images), "--quiet"]
    assert convert_main([*base, "--out", str(tmp_path / "a.h5")]) == 1
    assert "excel.csv, line 3" in capsys.readouterr().err
    assert convert_main([*base, "--out", str(tmp_path / "b.h5"), "--encoding", "cp1252"]) == 0
    with pytest.raises(SystemExit):
        convert_main([*base, "--out", str(tmp_path / "c.h5"), "--encoding", "klingon"])


def _builder(
    root: Path, storage: dict[str, str | None], **options: object
) -> FashionCatalogueBuilder:
    cfg = {"data_root": str(root), "build_info": {"storage": storage}, **options}
    return FashionCatalogueBuilder(OmegaConf.create(cfg))


def test_builder_encoding_key(tmp_path: Path, images: Path) -> None:
    text = "image,text,product_id\na.jpg,red café shirt,1\nb.jpg,blue shirt,2\n"
    _write(tmp_path / "train.csv", text, "cp1252")
    storage = {"train": "train.csv", "val": None, "images": str(images)}
    with pytest.raises(CatalogueError, match=r"train\.csv, line 2"):
        _builder(tmp_path, storage).build_datasets()
    train = _builder(tmp_path, storage, encoding="cp1252").build_datasets()["train"]
    assert train.raw_texts[0] == "red café shirt"
    with pytest.raises(ValueError, match=r"fashion_catalogue\.encoding`: unknown encoding"):
        _builder(tmp_path, storage, encoding="klingon").build_datasets()


@pytest.mark.parametrize("how", ["same path", "copy"])
def test_builder_refuses_val_that_is_the_train_table(
    tmp_path: Path, images: Path, how: str
) -> None:
    text = "image,text,product_id\na.jpg,red shirt,1\nb.jpg,blue shirt,2\n"
    _write(tmp_path / "train.csv", text)
    val = "train.csv" if how == "same path" else "val.csv"
    if how == "copy":
        shutil.copy(tmp_path / "train.csv", tmp_path / "val.csv")
    storage = {"train": "train.csv", "val": val, "images": str(images)}
    same = "the same file" if how == "same path" else "identical content"
    with pytest.raises(ValueError, match=rf"storage\.val` .* are {same}: evaluating on the train"):
        _builder(tmp_path, storage, mode="retrieval").build_datasets()
