"""The synthetic catalogue on disk: the FashionGen h5 schema, the visibility sidecar (checked
against fresh renders), determinism, the summary and the command line, on a tiny catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from lavis_syncmask.cli.synthetic import main
from lavis_syncmask.synthetic import (
    build_catalogue,
    format_summary,
    generate_catalogue,
    render_image,
    summarize_catalogue,
)
from lavis_syncmask.synthetic.render import GRID, PATCH
from lavis_syncmask.synthetic.taxonomy import ATTRIBUTES
from lavis_syncmask.synthetic.text import TRAILING_PUNCTUATION

SPLITS = {"train": "fashiongen_256_256_train.h5", "validation": "fashiongen_256_256_validation.h5"}
STRING_KEYS = (
    "input_description",
    "input_name",
    "input_category",
    "input_subcategory",
    "input_pose",
    "input_brand",
    "input_composition",
    "input_concat_description",
    "input_department",
    "input_gender",
    "input_season",
)
ARGS = {"products": 30, "val_products": 10, "seed": 5}


@pytest.fixture(scope="module")
def catalogue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    return generate_catalogue(out, **ARGS, fashioniq_triplets=2, progress=False, vocab_size=300)


def sidecar(h5_path: Path) -> list[dict]:
    lines = (
        h5_path.with_name(h5_path.stem + "_visibility.jsonl")
        .read_text(encoding="ascii")
        .splitlines()
    )
    return [json.loads(line) for line in lines[1:]]  # lines[0]: the fingerprint header


def test_every_key_of_the_real_schema(catalogue_dir: Path):
    for filename in SPLITS.values():
        with h5py.File(catalogue_dir / filename, "r") as h5:
            n = h5["input_image"].shape[0]
            assert n > 0
            image = h5["input_image"]
            assert image.shape == (n, 256, 256, 3) and image.dtype == np.uint8
            assert image.chunks == (1, 256, 256, 3)
            for key in STRING_KEYS:
                assert h5[key].shape == (n, 1) and h5[key].dtype.kind == "S", key
                assert all(len(bytes(v)) > 0 for v in h5[key][:, 0]), key
            assert (
                h5["input_productID"].shape == (n, 1) and h5["input_productID"].dtype.kind in "iu"
            )
            assert h5["input_msrpUSD"].shape == (n, 1) and h5["input_msrpUSD"].dtype == np.float32
            assert h5["index"].shape == (n, 1) and h5["index"].dtype.kind in "iu"
            assert h5["index_2"].shape == (n,) and h5["index_2"].dtype.kind in "iu"


def test_rows_of_a_product_are_consecutive_and_splits_disjoint(catalogue_dir: Path):
    seen: list[set[int]] = []
    for split, filename in SPLITS.items():
        with h5py.File(catalogue_dir / filename, "r") as h5:
            ids = h5["input_productID"][:, 0]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        assert len(set(ids[starts].tolist())) == len(starts), f"{split}: a product's rows are split"
        runs = np.diff(np.r_[starts, len(ids)])
        assert runs.min() >= 1 and runs.max() <= 6
        seen.append(set(ids.tolist()))
        assert len(seen[-1]) == ARGS["products" if split == "train" else "val_products"]
    assert not seen[0] & seen[1]


def test_validation_subcategories_occur_in_training(catalogue_dir: Path):
    names = []
    for filename in SPLITS.values():
        with h5py.File(catalogue_dir / filename, "r") as h5:
            names.append({bytes(v) for v in h5["input_subcategory"][:, 0]})
    assert names[1] <= names[0]


def test_text_round_trips_through_latin1(catalogue_dir: Path):
    catalogue = build_catalogue(**ARGS)
    non_ascii = 0
    for split, filename in SPLITS.items():
        rows = catalogue.rows(split)
        with h5py.File(catalogue_dir / filename, "r") as h5:
            for key, text_of in (
                ("input_description", lambda p: p.description.text),
                ("input_name", lambda p: p.name.text),
                ("input_brand", lambda p: p.brand),
            ):
                stored = [bytes(v).decode("latin-1") for v in h5[key][:, 0]]
                assert stored == [text_of(p) for p, _ in rows], key
                non_ascii += sum(any(ord(c) > 127 for c in s) for s in stored)
            assert [bytes(v).decode() for v in h5["input_pose"][:, 0]] == [v.pose for _, v in rows]
    assert non_ascii > 0, "the tiny catalogue should carry some Latin-1 characters"


def test_sidecar_schema_and_offsets(catalogue_dir: Path):
    for filename in SPLITS.values():
        with h5py.File(catalogue_dir / filename, "r") as h5:
            texts = {
                k: [bytes(v).decode("latin-1") for v in h5[k][:, 0]]
                for k in ("input_description", "input_name")
            }
            ids = h5["input_productID"][:, 0]
            poses = [bytes(v).decode() for v in h5["input_pose"][:, 0]]
        records = sidecar(catalogue_dir / filename)
        assert len(records) == len(ids)
        for row, record in enumerate(records):
            assert set(record) == {"row", "product_id", "pose", "words", "attributes"}
            assert (record["row"], record["product_id"], record["pose"]) == (
                row,
                int(ids[row]),
                poses[row],
            )
            assert (
                set(record["attributes"]) <= set(ATTRIBUTES) and "category" in record["attributes"]
            )
            for key, words in record["words"].items():
                text = texts[key][row]
                assert len(words) == len(text.split())
                for (start, end, visible, attribute), word in zip(words, text.split()):
                    assert text[start:end] == word.rstrip(TRAILING_PUNCTUATION)
                    assert visible in (0, 1)
                    assert visible == int(
                        attribute is not None and attribute in record["attributes"]
                    )
                    if attribute == "category":
                        assert visible == 1


def test_sidecar_is_true(catalogue_dir: Path):
    """Omitting a listed attribute changes pixels, and only inside its patches; omitting an
    unlisted one changes nothing. The h5 image is the render of the in-memory row."""
    catalogue = build_catalogue(**ARGS)
    rows = catalogue.rows("validation")
    records = sidecar(catalogue_dir / SPLITS["validation"])
    with h5py.File(catalogue_dir / SPLITS["validation"], "r") as h5:
        for row in range(0, len(rows), 2):
            product, view = rows[row]
            image = h5["input_image"][row]
            assert np.array_equal(image, render_image(product, view))
            listed = records[row]["attributes"]
            for attribute in ATTRIBUTES:
                diff = (render_image(product, view, omit=attribute) != image).any(-1)
                changed = diff.reshape(GRID, PATCH, GRID, PATCH).any(axis=(1, 3)).ravel()
                allowed = np.zeros(GRID * GRID, dtype=bool)
                allowed[listed.get(attribute, [])] = True
                assert changed.any() == (attribute in listed), (row, attribute)
                assert not (changed & ~allowed).any(), (row, attribute)


def test_summary_invisible_words_duplicates_and_views(catalogue_dir: Path):
    summary = summarize_catalogue(catalogue_dir)
    assert summary["invisible_content_words_non_front"] >= 0.20
    assert (
        summary["invisible_content_words"]["front"] < summary["invisible_content_words_non_front"]
    )
    for split, expected in (("train", 30), ("validation", 10)):
        s = summary["splits"][split]
        assert s["products"] == expected and s["rows_consecutive"]
        assert s["near_duplicate_share"] >= 0.05
        assert set(s["views_per_product"]) <= {"1", "2", "3", "4", "5", "6"}
        assert sum(s["views_per_product"].values()) == expected
    assert summary["categories"] >= 5 and summary["subcategories"] > summary["categories"]
    assert summary["vocab_tokens"] > 100
    text = format_summary(summary)
    assert "invisible content words" in text and "FashionIQ" in text


def test_same_seed_same_bytes_other_seed_differs(catalogue_dir: Path, tmp_path: Path):
    again = generate_catalogue(
        tmp_path / "again", **ARGS, fashioniq_triplets=0, progress=False, vocab_size=300
    )
    other = generate_catalogue(
        tmp_path / "other",
        **{**ARGS, "seed": 6},
        fashioniq_triplets=0,
        progress=False,
        vocab_size=300,
    )
    for filename in SPLITS.values():
        with (
            h5py.File(catalogue_dir / filename) as a,
            h5py.File(again / filename) as b,
            h5py.File(other / filename) as c,
        ):
            assert sorted(a.keys()) == sorted(b.keys())
            for key in a.keys():
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key][()], b[key][()]), key
            assert not np.array_equal(a["input_productID"][()], c["input_productID"][()])
            assert a["input_image"].shape != c["input_image"].shape or not np.array_equal(
                a["input_image"][()], c["input_image"][()]
            )
        side = filename.replace(".h5", "_visibility.jsonl")
        assert (catalogue_dir / side).read_bytes() == (again / side).read_bytes()
        assert (catalogue_dir / side).read_bytes() != (other / side).read_bytes()


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "cli"
    main(
        [
            "--out",
            str(out),
            "--products",
            "4",
            "--val-products",
            "3",
            "--seed",
            "1",
            "--fashioniq-triplets",
            "1",
            "--vocab-size",
            "200",
        ]
    )
    printed = capsys.readouterr().out
    assert "Synthetic fashion catalogue" in printed and str(out) in printed
    assert (out / "vocab" / "vocab.txt").exists() and (out / "fashioniq" / "captions").is_dir()
    with pytest.raises(ValueError, match="products"):
        generate_catalogue(tmp_path / "bad", products=0, val_products=1, seed=0, progress=False)
