"""Search reliability: an index is bound to the rows and the checkpoint that built it, written
atomically, and bad query inputs are one-line errors (issue 20, "Search index").

A tiny model at random weights (a runner-style checkpoint) indexes a small catalogue of 8 rows;
every index run and query goes through the command line's ``main``."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from catalogue_fixtures import draw_product, write_catalogue
from omegaconf import OmegaConf

from lavis_syncmask.cli.search import main as search
from lavis_syncmask.search import index as index_module
from lavis_syncmask.search.index import FEATURES_FILE, INDEX_VERSION, META_FILE, ROWS_FILE
from lavis_syncmask.search.query import SearchIndex

CPU = ["--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two runner-style checkpoints of a tiny model (weights + run config), differing in one
    weight, and the first one's weights as a bare state dict."""
    from lavis.common.registry import registry

    from lavis_syncmask.search.model import model_config

    folder = tmp_path_factory.mktemp("checkpoints")
    preset = OmegaConf.load(
        registry.get_model_class("syncmask_fashion").default_config_path("tiny")
    )
    config = OmegaConf.to_yaml(OmegaConf.create({"model": preset.model}))
    cfg = model_config({"config": config}, None, "test")
    state = registry.get_model_class(cfg.arch).from_config(cfg).state_dict()
    torch.save({"model": state, "config": config}, folder / "a.pth")
    torch.save(state, folder / "bare.pth")
    state["vision_proj.bias"] = state["vision_proj.bias"] + 1.0
    torch.save({"model": state, "config": config}, folder / "b.pth")
    return folder / "a.pth", folder / "b.pth", folder / "bare.pth"


def _index(checkpoint: Path, data: Path, out: Path, *extra: str) -> int:
    if data.suffix == ".csv":
        extra = ("--images", str(data.parent / "images"), *extra)
    return search(["index", "--checkpoint", str(checkpoint),
                   "--data", str(data), "--out", str(out), "--quiet", *CPU, *extra])  # fmt: skip


def _query(index: Path, *args: str) -> int:
    sheet = index.parent / "hits.png"
    return search(["query", "--index", str(index), "--sheet", str(sheet), *CPU, *args])


@pytest.fixture
def shop(tmp_path: Path, checkpoints: tuple[Path, Path, Path]) -> Path:
    """``tmp_path/shop`` (4 products x 2 views in train.csv) indexed into ``tmp_path/index``."""
    write_catalogue(tmp_path / "shop", (4, 1))
    assert _index(checkpoints[0], tmp_path / "shop" / "train.csv", tmp_path / "index") == 0
    return tmp_path / "shop"


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_index_records_the_source_and_checkpoint_fingerprints(
    shop: Path, checkpoints: tuple[Path, Path, Path]
) -> None:
    meta = json.loads((shop.parent / "index" / META_FILE).read_text())
    digest = hashlib.sha256(checkpoints[0].read_bytes()).hexdigest()
    assert meta["checkpoint"] == str(checkpoints[0]) and meta["checkpoint_sha256"] == digest
    assert len(meta["source"]["sha256"]) == 64 and len(meta["source"]["files"]) == 8
    rows = [json.loads(line) for line in (shop.parent / "index" / ROWS_FILE).open()]
    image = shop / "images" / "p0_0.jpg"
    assert rows[0]["image_sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    for path in (shop / "images").iterdir():  # touched, same bytes: re-hashed and accepted
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert _query(shop.parent / "index", "--text", "a red dress", "--k", "2") == 0
    assert _query(shop.parent / "index", "--text", "red", "--checkpoint", str(checkpoints[0])) == 0


def test_index_of_a_bare_state_dict_can_be_queried(
    tmp_path: Path, checkpoints: tuple[Path, Path, Path]
) -> None:
    write_catalogue(tmp_path / "shop", (2, 1))
    data, index = tmp_path / "shop" / "train.csv", tmp_path / "index"
    assert _index(checkpoints[2], data, index, "--model-type", "tiny") == 0
    assert _query(index, "--text", "a red dress") == 0  # was: "holds no run config"


def _reorder(shop: Path) -> None:
    with open(shop / "train.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(shop / "train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[2:] + rows[:2])  # the first product moves to the end


def _swap_views(shop: Path) -> None:
    table = (shop / "train.csv").read_text()  # product SKU-0000's two views change places
    swapped = re.sub(r"p0_([01])\.jpg", lambda m: f"p0_{1 - int(m[1])}.jpg", table)
    (shop / "train.csv").write_text(swapped)


def _new_image(shop: Path) -> None:
    draw_product("green", "dress", (300, 400)).save(shop / "images" / "p1_0.jpg", quality=90)


def _add_row(shop: Path) -> None:
    with open(shop / "train.csv", "a", newline="") as handle:
        handle.write("p0_0.jpg,A new product.,SKU-0999,tops,shirts\n")


def _edit_text(shop: Path) -> None:
    table = (shop / "train.csv").read_text()
    (shop / "train.csv").write_text(table.replace("A red shirt", "A pink shirt", 1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_reorder, "is now SKU-0001 'A red dress in cotton.', the index has SKU-0000"),
        (_swap_views, "the image of row 0"),
        (_new_image, "product SKU-0001"),
        (_add_row, "it has 9 usable rows, the index 8 (rows added or removed)"),
        (_edit_text, "is now SKU-0000 'A pink shirt in cotton.'"),
    ],
)
def test_query_refuses_a_changed_source(
    shop: Path, change, message: str, capsys: pytest.CaptureFixture
) -> None:
    change(shop)
    capsys.readouterr()
    assert _query(shop.parent / "index", "--text", "a red dress", "--rerank-itm", "3") == 2
    err = _one_error_line(capsys)
    assert "changed since indexing" in err and message in err and "index it again" in err


def test_query_refuses_an_h5_whose_image_changed(
    tmp_path: Path, checkpoints: tuple[Path, Path, Path], capsys: pytest.CaptureFixture
) -> None:
    from lavis_syncmask.data.catalogue_h5 import convert_catalogue

    write_catalogue(tmp_path / "shop", (2, 1))
    data = tmp_path / "shop.h5"
    convert_catalogue(
        tmp_path / "shop" / "train.csv", data, tmp_path / "shop" / "images", progress=False
    )
    assert _index(checkpoints[0], data, tmp_path / "index") == 0
    assert _query(tmp_path / "index", "--text", "red") == 0
    with h5py.File(data, "r+") as h5:
        h5["input_image"][2, 0, 0] = 7  # one pixel of row 2, in place
    capsys.readouterr()
    assert _query(tmp_path / "index", "--text", "red") == 2
    assert f"the image of row 2 of {data}" in _one_error_line(capsys)


def test_rehash_finds_a_change_that_keeps_size_and_time(
    shop: Path, capsys: pytest.CaptureFixture
) -> None:
    image = shop / "images" / "p2_1.jpg"
    stat = image.stat()
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size; the time put back below
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _query(shop.parent / "index", "--text", "red") == 0  # trusted by size and time
    capsys.readouterr()
    assert _query(shop.parent / "index", "--text", "red", "--rehash") == 2
    assert "the image of row 5" in _one_error_line(capsys)


def test_query_refuses_another_checkpoint(
    shop: Path, checkpoints: tuple[Path, Path, Path], capsys: pytest.CaptureFixture
) -> None:
    index, (built_with, other, _) = shop.parent / "index", checkpoints
    capsys.readouterr()
    assert _query(index, "--text", "red", "--checkpoint", str(other)) == 2
    err = _one_error_line(capsys)
    assert f"--checkpoint {other}" in err and f"built with ({built_with}" in err
    copy = shop.parent / "copy.pth"  # the same bytes elsewhere: accepted
    shutil.copy(built_with, copy)
    assert _query(index, "--text", "red", "--checkpoint", str(copy)) == 0
    meta = json.loads((index / META_FILE).read_text())
    meta["checkpoint"] = str(copy)
    (index / META_FILE).write_text(json.dumps(meta))
    shutil.copy(other, copy)  # the indexed checkpoint file overwritten (training went on)
    capsys.readouterr()
    assert _query(index, "--text", "red") == 2
    assert f"the checkpoint {copy} changed since indexing" in _one_error_line(capsys)


def test_killed_index_run_leaves_the_old_index_intact(
    shop: Path, checkpoints: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    index = shop.parent / "index"
    before = _files(index)
    real, calls = index_module.image_itc_features, []

    def dies_on_batch_3(model, images):  # noqa: ANN001, ANN202
        calls.append(len(images))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a Ctrl-C part-way through
        return real(model, images)

    monkeypatch.setattr(index_module, "image_itc_features", dies_on_batch_3)
    with pytest.raises(KeyboardInterrupt):  # indexing again with another checkpoint
        _index(checkpoints[1], shop / "train.csv", index, "--batch-size", "2")
    assert len(calls) == 3 and _files(index) == before
    assert sorted(p.name for p in shop.parent.iterdir()) == ["index", "shop"]  # no half index
    assert _query(index, "--text", "red") == 0  # the old index, with its own checkpoint


def test_index_run_removes_a_dead_runs_partial_and_keeps_other_folders(
    shop: Path, checkpoints: tuple[Path, Path, Path], capsys: pytest.CaptureFixture
) -> None:
    stale = shop.parent / ".index.partial-999999999-abc"  # no such process
    stale.mkdir()
    (stale / FEATURES_FILE).write_bytes(b"half")
    assert _index(checkpoints[1], shop / "train.csv", shop.parent / "index") == 0
    assert not stale.exists()
    assert json.loads((shop.parent / "index" / META_FILE).read_text())["checkpoint"] == str(
        checkpoints[1]
    )
    mine = shop.parent / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert _index(checkpoints[0], shop / "train.csv", mine) == 2
    assert "is not a search index" in _one_error_line(capsys)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_index_moved_aside_by_a_kill_between_renames_is_named(tmp_path: Path) -> None:
    aside = tmp_path / ".index.old-123-abcd"
    aside.mkdir()
    with pytest.raises(FileNotFoundError, match=r"previous index at .*\.index\.old-123-abcd"):
        SearchIndex.load(tmp_path / "index")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, checkpoints: tuple[Path, Path, Path]) -> Path:
    root = tmp_path_factory.mktemp("built")
    write_catalogue(root / "shop", (2, 1))
    assert _index(checkpoints[0], root / "shop" / "train.csv", root / "index") == 0
    return root / "index"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "notes.txt"], "notes.txt"),  # the decoder's words are data.images's
        (["--image", "empty.jpg"], "empty.jpg"),
        (["--text", "red", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["--text", "red", "--device", "cuda"], "--device cuda: torch sees no CUDA GPU here"),
        (["--text", "red", "--device", "gpu"], "--device 'gpu' is not a torch device"),
        (["--text", "red", "--k", "0", "--rerank-itm", "3"], "--k must be >= 1, got 0"),
        (["--text", "red", "--rerank-itm", "-2"], "--rerank-itm must be >= 0, got -2"),
    ],
)
def test_bad_query_inputs_are_one_line_errors(
    built: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    monkeypatch.chdir(built.parent)
    Path("notes.txt").write_text("not an image\n")
    Path("empty.jpg").write_bytes(b"")
    threads = torch.get_num_threads()
    command = ["query", "--index", str(built), "--sheet", "hits.png", *args]
    command += [] if "--device" in args else ["--device", "cpu"]
    try:
        assert search(command) == 2
    finally:
        torch.set_num_threads(threads)
    assert message in _one_error_line(capsys)


def _empty_index(folder: Path) -> None:
    folder.mkdir()
    np.save(folder / FEATURES_FILE, np.zeros((0, 64), dtype=np.float32))
    (folder / ROWS_FILE).write_text("")
    meta = {"version": INDEX_VERSION, "rows": 0, "dim": 64, "checkpoint": "x.pth", "data": "x"}
    (folder / META_FILE).write_text(json.dumps(meta))


def test_zero_rows_are_refused_at_index_and_query_time(
    tmp_path: Path, checkpoints: tuple[Path, Path, Path], capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "empty.h5"
    with h5py.File(data, "w") as h5:
        h5.create_dataset("input_image", shape=(0, 256, 256, 3), dtype=np.uint8)
        h5.create_dataset("input_productID", shape=(0,), dtype=np.int64)
        h5.create_dataset("input_description", shape=(0,), dtype="S10")
    assert _index(checkpoints[0], data, tmp_path / "index") == 2
    assert f"--data {data} has no rows" in _one_error_line(capsys)
    assert not (tmp_path / "index").exists()
    _empty_index(tmp_path / "zero")
    assert _query(tmp_path / "zero", "--text", "red") == 2
    assert "is an index of 0 rows: nothing to search" in _one_error_line(capsys)
