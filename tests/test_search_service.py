"""Search as a service (issue 22): every route of `search.service` through Starlette's
``TestClient`` (no socket), its error cases, and ``serve`` refusing a changed index at
start-up. A tiny model at random weights indexes a catalogue of 3 products x 2 views."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_reliability_search as reliability
from catalogue_fixtures import write_catalogue
from PIL import Image
from starlette.testclient import TestClient

from lavis_syncmask.cli.search import main as search_cli
from lavis_syncmask.search.fingerprint import SourceChangedError
from lavis_syncmask.search.query import open_searchable
from lavis_syncmask.search.service import MAX_K, create_app

CPU, _index = reliability.CPU, reliability._index
checkpoints = reliability.checkpoints  # the module-scoped fixture: tiny runner checkpoints


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, checkpoints: tuple[Path, Path, Path]
) -> tuple[Path, Any, Any, Any]:
    """(index folder, index, reader, model) of a 3-product catalogue, loaded once."""
    root = tmp_path_factory.mktemp("served")
    write_catalogue(root / "shop", (3, 1))
    assert _index(checkpoints[0], root / "shop" / "train.csv", root / "index") == 0
    return (root / "index", *open_searchable(root / "index"))


@pytest.fixture(scope="module")
def client(loaded: tuple[Path, Any, Any, Any]) -> TestClient:
    _, index, reader, search = loaded
    return TestClient(create_app(index, search, reader))


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _error(response: Any, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "\n" not in message and re.search(pattern, message), message


def test_health_reports_the_loaded_index(client: TestClient, loaded: tuple) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["rows"] == 6 and body["dim"] == loaded[1].meta["dim"]
    assert body["checkpoint"] == loaded[1].meta["checkpoint"] and body["index_type"] == "exact"


def test_page_and_script_use_no_external_asset(client: TestClient) -> None:
    page, script = client.get("/"), client.get("/app.js")
    assert page.status_code == 200 and 'src="app.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for text in (page.text, script.text):
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), "external asset"


def test_text_search_returns_json_hits(client: TestClient) -> None:
    hits = client.get("/search", params={"q": "a red dress", "k": 3}).json()["hits"]
    assert len(hits) == 3 and len({h["product"] for h in hits}) == 3
    assert set(hits[0]) == {"row", "product", "text", "score", "itm"}
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:]))
    assert all(h["itm"] is None for h in hits)


def test_text_search_rerank_gives_itm_scores(client: TestClient) -> None:
    hits = client.get("/search", params={"q": "a red dress", "k": 3, "rerank": 2}).json()["hits"]
    assert all(0.0 <= h["itm"] <= 1.0 for h in hits[:2]) and hits[2]["itm"] is None
    assert hits[0]["itm"] >= hits[1]["itm"]


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({}, "missing parameter q"),
        ({"q": "   "}, "missing parameter q"),
        ({"q": "red", "k": "0"}, rf"k=0 is out of range \[1, {MAX_K}\]"),
        ({"q": "red", "k": "two"}, "k='two' is not an integer"),
        ({"q": "red", "rerank": "65"}, r"rerank=65 is out of range \[0, 64\]"),
    ],
)
def test_bad_text_search_parameters_are_400(
    client: TestClient, params: dict[str, str], pattern: str
) -> None:
    _error(client.get("/search", params=params), 400, pattern)


def test_image_search_finds_the_uploaded_product(client: TestClient, loaded: tuple) -> None:
    _, index, reader, _ = loaded
    response = client.post("/search/image?k=3", content=_png(reader.image(3)))
    # At random weights the red garments are near neighbours; the uploaded row scores ~1.
    hit = {h["product"]: h for h in response.json()["hits"]}[index.products[3]]
    assert hit["row"] == 3 and hit["score"] == pytest.approx(1.0, abs=1e-4)


def _truncated_png(reader: Any) -> bytes:
    return _png(reader.image(0))[:-40]


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (lambda r: b"", "empty upload"),
        (lambda r: b"name,price\nshirt,3\n", "image upload is truncated or corrupt: not an image"),
        (_truncated_png, "image upload is truncated or corrupt"),
    ],
)
def test_bad_uploads_are_400(client: TestClient, loaded: tuple, body: Any, pattern: str) -> None:
    _error(client.post("/search/image", content=body(loaded[2])), 400, pattern)


def test_oversize_uploads_are_413_declared_or_streamed(loaded: tuple) -> None:
    _, index, reader, search = loaded
    small = TestClient(create_app(index, search, reader, max_upload=1000))
    upload = _png(reader.image(0))
    assert len(upload) > 1000
    _error(small.post("/search/image", content=upload), 413, "over the limit of 1000 bytes")
    chunks = iter([upload[:600], upload[600:]])  # chunked: no Content-Length to trust
    _error(small.post("/search/image", content=chunks), 413, "over the limit of 1000 bytes")


def test_huge_canvas_is_413_before_decoding(client: TestClient) -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")  # 48 Mpx in a few kB
    _error(client.post("/search/image", content=out.getvalue()), 413, "8000x6000 pixels")


def test_thumbnail_by_row(client: TestClient) -> None:
    response = client.get("/thumb/5")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(response.content)).size) <= 192


@pytest.mark.parametrize(
    ("path", "status", "pattern"),
    [
        ("/thumb/6", 404, "row 6 is out of range: the index has rows 0 to 5"),
        ("/thumb/-1", 404, "row -1 is out of range"),
        ("/thumb/abc", 400, "row 'abc' is not an integer"),
        ("/thumb/1.5", 400, "row '1.5' is not an integer"),
        ("/thumb/%2E%2E", 400, "row '..' is not an integer"),
        ("/thumb/..%2F..%2Fetc%2Fpasswd", 404, "Not Found"),  # matches no route
        ("/nowhere", 404, "Not Found"),
    ],
)
def test_bad_rows_and_routes(client: TestClient, path: str, status: int, pattern: str) -> None:
    _error(client.get(path), status, pattern)


def test_why_gives_word_scores_and_an_attention_picture(client: TestClient) -> None:
    body = client.get("/why", params={"q": "a red silk dress", "row": 1}).json()
    words = [w["word"] for w in body["words"]]
    assert words == ["red", "silk", "dress"]  # "a" is a stop-word, as in the masks
    assert all(isinstance(w["score"], float) for w in body["words"])
    grid = body["grid"]
    assert len(body["top_patches"]) == round(0.25 * grid * grid)
    assert all(0 <= p < grid * grid for p in body["top_patches"])
    png = base64.b64decode(body["png"].removeprefix("data:image/png;base64,"))
    assert Image.open(io.BytesIO(png)).format == "PNG"


@pytest.mark.parametrize(
    ("params", "status", "pattern"),
    [
        ({"q": "red"}, 400, "missing parameter row"),
        ({"row": "0"}, 400, "missing parameter q"),
        ({"q": "red", "row": "99"}, 404, "row 99 is out of range"),
    ],
)
def test_bad_why_parameters(
    client: TestClient, params: dict[str, str], status: int, pattern: str
) -> None:
    _error(client.get("/why", params=params), status, pattern)


def test_serve_binds_loopback_and_serves_the_app(
    loaded: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[tuple[Any, str, int]] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda app, host, port, **_: calls.append((app, host, port))
    )
    assert search_cli(["serve", "--index", str(loaded[0]), *CPU]) == 0
    app, host, port = calls[0]
    assert (host, port) == ("127.0.0.1", 8000)
    assert TestClient(app).get("/health").json()["rows"] == 6


def test_serve_refuses_an_index_of_another_checkpoint(
    loaded: tuple,
    checkpoints: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served a refused index"))
    command = ["serve", "--index", str(loaded[0]), "--checkpoint", str(checkpoints[1]), *CPU]
    assert search_cli(command) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --checkpoint") and "is not the checkpoint this index" in err
    with pytest.raises(SourceChangedError, match="not the checkpoint this index was built with"):
        open_searchable(loaded[0], checkpoints[1])


def test_serve_refuses_a_changed_source(
    tmp_path: Path,
    checkpoints: tuple[Path, Path, Path],
) -> None:
    write_catalogue(tmp_path / "shop", (2, 1))
    table = tmp_path / "shop" / "train.csv"
    assert _index(checkpoints[0], table, tmp_path / "index") == 0
    table.write_text(table.read_text().replace("red", "blue", 1))
    with pytest.raises(SourceChangedError, match="changed since indexing"):
        open_searchable(tmp_path / "index")


def test_serve_rejects_a_bad_port(loaded: tuple, capsys: pytest.CaptureFixture) -> None:
    assert search_cli(["serve", "--index", str(loaded[0]), "--port", "70000", *CPU]) == 2
    assert "--port must be <= 65535, got 70000" in capsys.readouterr().err
