"""Approximate search (issue 22): FAISS IVF and HNSW indexes find the exact top 10 (recall
>= 0.95 on clustered features), keep exact scores, and are written, loaded and queried as
part of an index folder (``--index-type``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import test_reliability_search as reliability

from lavis_syncmask.search.ann import (
    ANN_FILE,
    RECALL_TARGET,
    AnnSearch,
    build_ann,
    ivf_params,
)
from lavis_syncmask.search.index import FEATURES_FILE, META_FILE
from lavis_syncmask.search.query import SearchIndex, top_products

pytest.importorskip("faiss")
checkpoints = reliability.checkpoints  # the module-scoped fixture: tiny runner checkpoints


def clustered(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit features around 50 centres, as image features of a catalogue group by garment."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    features = centres[rng.integers(0, 50, rows)] + 0.6 * rng.normal(size=(rows, dim))
    return (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_ann_recall_at_10_against_exact(kind: str) -> None:
    # Calibrated on queries of the kind later served (here: another 200 of the same draw),
    # as an index calibrates on its catalogue's texts.
    features, drawn = clustered(6000, 64), clustered(250, 64, seed=1)
    calibration, queries = drawn[:200], drawn[200:]
    ann, params = build_ann(features, kind, threads=1, queries=calibration)
    index = SearchIndex(Path("."), {}, features, [str(i) for i in range(6000)], [""] * 6000)
    approx = SearchIndex(index.folder, {}, features, index.products, index.texts,
                         ann=AnnSearch(ann, kind))  # fmt: skip
    found = 0
    for query in queries:
        exact = {h.row: h.score for h in top_products(index, query, 10)}
        hits = top_products(approx, query, 10)
        found += len(exact.keys() & {h.row for h in hits})
        for hit in hits:  # flat storage: a row found has its exact cosine score
            assert hit.score == pytest.approx(float(features[hit.row] @ query), abs=1e-5)
    assert found / (10 * len(queries)) >= 0.95, params


def test_ivf_params_follow_the_row_count() -> None:
    assert ivf_params(1_000_000) == {"nlist": 4000}
    assert ivf_params(100) == {"nlist": 2}  # 39 training rows per list
    assert ivf_params(8) == {"nlist": 1}


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_search_breadth_is_calibrated_on_the_catalogue(kind: str) -> None:
    """The smallest breadth that reaches the target on the catalogue's own rows: a harder
    catalogue (more rows per neighbourhood) gets a broader search, and what was measured is
    recorded."""
    key = "ef_search" if kind == "hnsw" else "nprobe"
    easy = build_ann(clustered(3000, 16), kind, threads=1)[1]
    hard = build_ann(clustered(3000, 64), kind, threads=1)[1]
    for params in (easy, hard):
        assert params["calibrated_recall"] >= RECALL_TARGET, params
    assert hard[key] >= easy[key]
    one = build_ann(clustered(1, 8), kind, threads=1)[1]
    assert one["calibrated_recall"] == 1.0


def test_calibration_keeps_the_top_of_the_ladder_when_the_target_is_out_of_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lavis_syncmask.search.ann as ann_module

    monkeypatch.setattr(ann_module, "RECALL_TARGET", 1.01)  # unreachable
    params = build_ann(clustered(2000, 32), "hnsw", threads=1)[1]
    assert params["ef_search"] == 2000  # the ladder ends at the row count
    assert params["calibrated_recall"] <= 1.0


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_index_type_is_written_loaded_and_queried(
    tmp_path: Path, checkpoints: tuple[Path, Path, Path], kind: str
) -> None:
    from catalogue_fixtures import write_catalogue

    write_catalogue(tmp_path / "shop", (4, 1))
    table = tmp_path / "shop" / "train.csv"
    assert reliability._index(checkpoints[0], table, tmp_path / "exact") == 0
    assert reliability._index(checkpoints[0], table, tmp_path / kind, "--index-type", kind) == 0
    meta = json.loads((tmp_path / kind / META_FILE).read_text())
    assert meta["index_type"] == kind and (tmp_path / kind / ANN_FILE).is_file()
    # calibrated on the catalogue's own texts: the breadth and the recall it measured
    assert meta["ann"]["calibrated_recall"] >= RECALL_TARGET
    assert meta["ann"]["ef_search" if kind == "hnsw" else "nprobe"] >= 1
    exact, approx = SearchIndex.load(tmp_path / "exact"), SearchIndex.load(tmp_path / kind)
    assert exact.ann is None and approx.ann is not None
    query = exact.features[5]
    rows, _ = approx.ann.search(query, 3)  # the loaded structure itself (8 rows: top_products
    assert rows[0] == 5  # would score them all exactly)
    assert [h.row for h in top_products(approx, query, 3)] == [
        h.row for h in top_products(exact, query, 3)
    ]
    assert reliability._query(tmp_path / kind, "--text", "a red dress", "--k", "3") == 0


def test_broken_ann_index_is_refused(tmp_path: Path, checkpoints: tuple[Path, Path, Path]) -> None:
    from catalogue_fixtures import write_catalogue

    write_catalogue(tmp_path / "shop", (2, 1))
    table = tmp_path / "shop" / "train.csv"
    assert reliability._index(checkpoints[0], table, tmp_path / "i", "--index-type", "hnsw") == 0
    (tmp_path / "i" / ANN_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=f"index type hnsw but no {ANN_FILE}"):
        SearchIndex.load(tmp_path / "i")
    meta = json.loads((tmp_path / "i" / META_FILE).read_text()) | {"index_type": "lsh"}
    (tmp_path / "i" / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown index type 'lsh'"):
        SearchIndex.load(tmp_path / "i")


def test_files_of_another_index_are_refused(
    tmp_path: Path, checkpoints: tuple[Path, Path, Path]
) -> None:
    """Same catalogue, same row count, another checkpoint: its features.npy or ann.faiss copied
    into the index would answer with another model's rows; the recorded SHA-256 refuses them,
    while a file merely touched (same bytes, new time) is re-hashed and accepted."""
    from catalogue_fixtures import write_catalogue

    write_catalogue(tmp_path / "shop", (2, 1))
    table = tmp_path / "shop" / "train.csv"
    for name, checkpoint in (("a", checkpoints[0]), ("b", checkpoints[1])):
        assert reliability._index(checkpoint, table, tmp_path / name, "--index-type", "ivf") == 0
    meta = json.loads((tmp_path / "a" / META_FILE).read_text())
    assert set(meta["artifacts"]) == {FEATURES_FILE, ANN_FILE}
    features = tmp_path / "a" / FEATURES_FILE
    os.utime(features, ns=(features.stat().st_atime_ns, features.stat().st_mtime_ns + 10**9))
    SearchIndex.load(tmp_path / "a")
    for name in (ANN_FILE, FEATURES_FILE):
        saved = (tmp_path / "a" / name).read_bytes()
        shutil.copyfile(tmp_path / "b" / name, tmp_path / "a" / name)
        with pytest.raises(ValueError, match=f"{name} is not the file this index wrote"):
            SearchIndex.load(tmp_path / "a")
        (tmp_path / "a" / name).write_bytes(saved)
    SearchIndex.load(tmp_path / "a")
