"""A catalogue from a CSV, as a user runs it from their own folder: `python -m lavis.train`
with pretrain_catalogue_tiny.yaml, `python -m lavis.evaluate` with retrieval_catalogue_tiny.yaml
on the checkpoint (both through the installed lavis_syncmask_hook), then product search on it:
index, a text query with ITM re-ranking, an image query, and the contact sheet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from catalogue_fixtures import write_catalogue
from PIL import Image

from lavis_syncmask.cli.search import main as search

RECIPES = Path(__file__).resolve().parent.parent / "projects" / "syncmask"
NOT_INSTALLED = (
    "No module named lavis.train/evaluate: this interpreter lacks lavis_syncmask_hook.pth; "
    "reinstall the package (`make install` or `pip install -e .`) so setup.py puts it into "
    "site-packages"
)
SHORT = ["run.max_epoch=1", "run.batch_size_train=8", "run.batch_size_eval=8", "run.warmup_steps=1"]


def _lavis(module: str, cwd: Path, *args: str) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)  # only what the install put into site-packages answers
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", module, *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert f"No module named {module}" not in done.stderr, NOT_INSTALLED
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's folder: shop/ (tables + images) and out/pre/checkpoint_0.pth."""
    cwd = tmp_path_factory.mktemp("user")
    write_catalogue(cwd / "shop", (12, 6))
    _lavis(
        "lavis.train", cwd, "--cfg-path", str(RECIPES / "pretrain_catalogue_tiny.yaml"),
        "--job-id", "pre", "--options", "run.output_dir=out",
        "datasets.fashion_catalogue.data_root=shop", *SHORT,
    )  # fmt: skip
    return cwd


def test_trains_and_evaluates_through_the_recipes(trained: Path) -> None:
    assert (trained / "out" / "pre" / "checkpoint_0.pth").is_file()
    _lavis(
        "lavis.evaluate", trained, "--cfg-path", str(RECIPES / "retrieval_catalogue_tiny.yaml"),
        "--checkpoint", "out/pre/checkpoint_0.pth", "--job-id", "eval",
        "--options", "run.output_dir=out", "datasets.fashion_catalogue.data_root=shop",
        "run.k_test=10",
    )  # fmt: skip
    metrics = json.loads((trained / "out" / "eval" / "metrics.json").read_text())
    assert metrics["metrics"]["n_images"] == 12 and metrics["metrics"]["n_texts"] == 6
    assert 0.0 <= metrics["metrics"]["r_mean"] <= 100.0


@pytest.fixture(scope="module")
def index(trained: Path) -> Path:
    shop, out = trained / "shop", trained / "index"
    checkpoint = str(trained / "out" / "pre" / "checkpoint_0.pth")
    assert search(["index", "--checkpoint", checkpoint, "--data", str(shop / "train.csv"),
                   "--images", str(shop / "images"), "--out", str(out), "--quiet",
                   "--device", "cpu"]) == 0  # fmt: skip
    return out


def test_search_index_and_queries(
    trained: Path, index: Path, capsys: pytest.CaptureFixture
) -> None:
    shop = trained / "shop"
    meta = json.loads((index / "index.json").read_text())
    assert meta["rows"] == 24 and meta["dim"] == 64 and meta["model_type"] == "tiny"
    capsys.readouterr()
    sheet = trained / "hits.png"
    assert search(["query", "--index", str(index), "--text", "a red dress", "--k", "3",
                   "--rerank-itm", "5", "--sheet", str(sheet), "--json", "--device", "cpu"]) == 0  # fmt: skip
    hits = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(hits) == 3 and len({h["product"] for h in hits}) == 3
    assert all(h["itm"] is not None for h in hits)
    assert [h["itm"] for h in hits] == sorted((h["itm"] for h in hits), reverse=True)
    with Image.open(sheet) as image:
        assert image.width > 3 * 192 and image.height > 192
    assert search(["query", "--index", str(index), "--image", str(shop / "images" / "p0_0.jpg"),
                   "--k", "2", "--sheet", str(trained / "img.png"), "--json", "--device", "cpu"]) == 0  # fmt: skip
    hits = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert hits[0]["product"] == "SKU-0000" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "   "], "empty query"),
        (["--text", "red", "--k", "0"], "--k must be >= 1"),
    ],
)
def test_bad_queries_are_one_line_errors(
    trained: Path, args: list[str], message: str, capsys
) -> None:
    index = trained / "index"
    if not index.exists():
        pytest.skip("needs test_search_index_and_queries's index")
    assert search(["query", "--index", str(index), *args, "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err


def test_query_argument_rules(trained: Path) -> None:
    with pytest.raises(SystemExit, match="exactly one of --text and --image"):
        search(["query", "--index", str(trained), "--text", "x", "--image", "y.jpg"])
    with pytest.raises(SystemExit, match="--rerank-itm needs a --text"):
        search(["query", "--index", str(trained), "--image", "y.jpg", "--rerank-itm", "4"])
    assert search(["query", "--index", str(trained), "--text", "red"]) == 2  # not an index
