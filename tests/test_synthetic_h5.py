"""The synthetic catalogue's FashionGen files: real schema, consecutive product rows, Latin-1
round trip, determinism, and the summary invariants (lavis_syncmask/data/synthetic)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from lavis_syncmask.data.synthetic import generate_catalogue, summarize_catalogue
from lavis_syncmask.data.synthetic.generator import plan_catalogue
from lavis_syncmask.data.synthetic.render import render_view

STEMS = ("fashiongen_256_256_train", "fashiongen_256_256_validation")
BYTE_KEYS = (
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
ARGS = {"products": 30, "val_products": 8, "fashioniq_triplets": 0, "progress": False}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_catalogue(tmp_path_factory.mktemp("syn") / "a", seed=5, **ARGS)


def _read_all(out: Path) -> dict[str, object]:
    contents: dict[str, object] = {}
    for stem in STEMS:
        with h5py.File(out / f"{stem}.h5", "r") as h5:
            for key in h5:
                contents[f"{stem}/{key}"] = h5[key][()]
        contents[f"{stem}/sidecar"] = (out / f"{stem}_visibility.jsonl").read_bytes()
    return contents


def test_every_key_has_the_real_dtype_and_shape(catalogue: Path) -> None:
    for stem in STEMS:
        with h5py.File(catalogue / f"{stem}.h5", "r") as h5:
            n = h5["input_image"].shape[0]
            assert h5["input_image"].shape == (n, 256, 256, 3)
            assert h5["input_image"].dtype == np.uint8
            assert h5["input_image"].chunks == (1, 256, 256, 3)
            for key in BYTE_KEYS:
                assert h5[key].shape == (n, 1) and h5[key].dtype.kind == "S", key
            assert h5["input_productID"].shape == (n, 1) and h5["input_productID"].dtype.kind == "i"
            assert h5["input_msrpUSD"].shape == (n, 1) and h5["input_msrpUSD"].dtype == np.float32
            assert h5["index"].shape == (n, 1) and h5["index"].dtype.kind == "i"
            assert h5["index_2"].shape == (n,) and h5["index_2"].dtype.kind == "i"


def test_rows_of_a_product_are_consecutive_and_splits_disjoint(catalogue: Path) -> None:
    ids = {}
    for stem in STEMS:
        with h5py.File(catalogue / f"{stem}.h5", "r") as h5:
            pids = h5["input_productID"][:, 0]
            poses = [p.decode("latin-1") for p in h5["input_pose"][:, 0]]
        starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
        assert len(starts) == len(set(pids.tolist())), "a product's rows are split"
        views = np.diff(np.r_[starts, len(pids)])
        assert views.min() >= 1 and views.max() <= 6
        assert all(poses[s] == "front" for s in starts)
        ids[stem] = set(pids.tolist())
    assert not ids[STEMS[0]] & ids[STEMS[1]]


def test_latin1_text_round_trips_and_images_match_the_renderer(catalogue: Path) -> None:
    train, _ = plan_catalogue(ARGS["products"], ARGS["val_products"], seed=5)
    rows = [(p, v) for p in train for v in p.views]
    with h5py.File(catalogue / f"{STEMS[0]}.h5", "r") as h5:
        descriptions = [bytes(d).decode("latin-1") for d in h5["input_description"][:, 0]]
        brands = [bytes(b).decode("latin-1") for b in h5["input_brand"][:, 0]]
        assert descriptions == [p.text.description for p, _ in rows]
        assert brands == [p.brand for p, _ in rows]
        for row in (0, len(rows) // 2, len(rows) - 1):
            product, view = rows[row]
            assert np.array_equal(h5["input_image"][row], render_view(product.garment, view))
    catalogue_text = " ".join(descriptions + brands)
    assert any(ord(ch) > 127 for ch in catalogue_text), "no Latin-1 character to round-trip"


def test_sidecar_is_one_record_per_row_in_order(catalogue: Path) -> None:
    for stem in STEMS:
        with h5py.File(catalogue / f"{stem}.h5", "r") as h5:
            n = len(h5["input_image"])
            names = [bytes(v).decode("latin-1") for v in h5["input_name"][:, 0]]
        records = [json.loads(line) for line in (catalogue / f"{stem}_visibility.jsonl").open()]
        assert [r["row"] for r in records] == list(range(n))
        for record, name in zip(records, names):
            assert set(record) == {"row", "product_id", "pose", "words", "attributes"}
            spans = record["words"]["input_name"]
            assert " ".join(name[s:e] for s, e, *_ in spans) == name


def test_same_seed_same_files_other_seed_differs(catalogue: Path, tmp_path: Path) -> None:
    again = generate_catalogue(tmp_path / "b", seed=5, **ARGS)
    first, second = _read_all(catalogue), _read_all(again)
    assert first.keys() == second.keys()
    for key in first:
        assert (
            np.array_equal(first[key], second[key])
            if isinstance(first[key], np.ndarray)
            else (first[key] == second[key])
        ), key
    other = _read_all(generate_catalogue(tmp_path / "c", seed=6, **ARGS))
    assert not np.array_equal(first[f"{STEMS[0]}/input_image"], other[f"{STEMS[0]}/input_image"])
    assert first[f"{STEMS[0]}/sidecar"] != other[f"{STEMS[0]}/sidecar"]


def test_summary_invariants(catalogue: Path) -> None:
    summary = summarize_catalogue(catalogue)
    train = summary["splits"]["train"]
    assert train["products"] == ARGS["products"]
    assert summary["splits"]["validation"]["products"] == ARGS["val_products"]
    assert set(train["views_per_product"]) <= {str(k) for k in range(1, 7)}
    assert train["near_duplicate_share"] >= 0.05
    shares = summary["invisible_content_share"]
    non_front = [shares[kind] for kind in ("back", "side", "detail") if kind in shares]
    assert non_front and np.mean(non_front) >= 0.2, shares
    assert (catalogue / "vocab" / "vocab.txt").exists()
