"""Product search over HTTP: a Starlette app around one loaded index, source and model.

    python -m lavis_syncmask.search serve --index INDEX [--host 127.0.0.1] [--port 8000]

``create_app(index, search, reader)`` builds the app (tests drive it with Starlette's
``TestClient``, no socket); `cli` loads the index and the model once, through
`query.open_searchable`, which refuses an index whose source or checkpoint changed. Routes:

- ``GET /``: the web page (``web/index.html`` + ``web/app.js``, package data, no external asset);
- ``GET /health``: rows, dimension, checkpoint;
- ``GET /search?q=TEXT&k=8&rerank=0``: JSON hits (row, product, text, ITC score, ITM
  probability of the first ``rerank`` hits, re-ranked);
- ``POST /search/image?k=8``: the request body is an image file (at most ``max_upload``
  bytes and ``MAX_PIXELS`` pixels), decoded by the strict decoder `data.images.decode_rgb`;
- ``GET /thumb/{row}``: the row's image as a PNG thumbnail; ``row`` must be an integer in
  ``[0, rows)``, so no path ever comes from the request;
- ``GET /why?q=TEXT&row=N``: the query's words with their cross-attention grounding scores
  and the attention over the row's image patches as a PNG (`why`).

Errors are JSON ``{"error": "one line"}`` with status 400 (bad parameter or image), 404 (row
out of range, unknown route) or 413 (upload too large). Decoding, model and source reads,
scoring and drawing all run on one worker thread, one request at a time: an h5 file handle and
the model's hooks are not thread-safe, and on the server's thread pool (up to 40 threads) each
thread grew its own malloc arena, so resident memory kept growing under load (+6.1% over
10,000 requests of `benchmarks/load_search.py`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, TypeVar

from PIL import Image
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lavis_syncmask.data.images import decode_rgb
from lavis_syncmask.search.model import SearchModel
from lavis_syncmask.search.query import Hit, SearchIndex, image_query, search_text, top_products
from lavis_syncmask.search.why import explain, why_png

MAX_UPLOAD = 8 << 20  # bytes: a product photo is well under this
MAX_PIXELS = 40_000_000  # a small file can declare a huge canvas (decompression bomb)
MAX_K, MAX_RERANK, THUMB = 100, 64, 192
#: The page loads only its own script and images (thumbnails, data: URLs of the why picture).
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
T = TypeVar("T")


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int:
    """Query parameter ``name`` as an int in ``[low, high]``, else a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise HTTPException(400, f"missing parameter {name} (an integer in [{low}, {high}])")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name}={value} is out of range [{low}, {high}]")
    return value


def _text_param(request: Request) -> str:
    text = request.query_params.get("q", "").strip()
    if not text:
        raise HTTPException(400, "missing parameter q: give at least one word")
    return text


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {"row": hit.row, "product": hit.product, "text": hit.text, "score": hit.score,
            "itm": hit.itm}  # fmt: skip


async def _read_upload(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes: an oversize
    upload is never held whole in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload is over the limit of {limit} bytes")
        chunks.append(chunk)
    if size == 0:
        raise HTTPException(400, "empty upload: send the image file as the request body")
    return b"".join(chunks)


def decode_upload(data: bytes) -> Image.Image:
    """The uploaded bytes as RGB (strict decoder), refusing huge canvases before decoding."""
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            width, height = probe.size
    except Exception:  # noqa: BLE001 - not an image: decode_rgb says what is wrong
        width = height = 0
    if width * height > MAX_PIXELS:
        raise HTTPException(413, f"uploaded image is {width}x{height} pixels, over the limit "
                                 f"of {MAX_PIXELS}")  # fmt: skip
    try:
        return decode_rgb(data, "upload")
    except ValueError as err:
        raise HTTPException(400, str(err)) from None


def _web_file(name: str) -> str:
    return (resources.files("lavis_syncmask.search") / "web" / name).read_text(encoding="utf-8")


class _Service:
    """The loaded index, source and model, and the route handlers over them."""

    def __init__(self, index: SearchIndex, search: SearchModel, reader: Any, limit: int) -> None:
        self.index, self.search, self.reader, self.limit = index, search, reader, limit
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        self.page, self.script = _web_file("index.html"), _web_file("app.js")
        self.thumbnail = functools.lru_cache(maxsize=2048)(self._thumbnail)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on the one worker thread, off the event loop (see the module doc)."""

        def checked() -> T:
            try:
                return work(*args)
            except ValueError as err:  # the query itself is unusable (no word left)
                raise HTTPException(400, str(err)) from None

        return await asyncio.get_running_loop().run_in_executor(self.worker, checked)

    def row(self, request: Request) -> int:
        """The ``row`` path or query parameter, an integer in range (404 beyond the index)."""
        raw = request.path_params.get("row", request.query_params.get("row"))
        if raw is None:
            raise HTTPException(400, "missing parameter row (an integer)")
        try:
            row = int(raw)
        except ValueError:
            raise HTTPException(400, f"row {raw!r} is not an integer") from None
        if not 0 <= row < len(self.index.products):
            raise HTTPException(404, f"row {row} is out of range: the index has rows 0 to "
                                     f"{len(self.index.products) - 1}")  # fmt: skip
        return row

    def _thumbnail(self, row: int) -> bytes:
        image = Image.fromarray(self.reader.image(row)).convert("RGB")
        image.thumbnail((THUMB, THUMB), Image.BICUBIC)
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    async def home(self, request: Request) -> Response:
        return HTMLResponse(self.page, headers={"Content-Security-Policy": CSP})

    async def app_js(self, request: Request) -> Response:
        return Response(self.script, media_type="text/javascript")

    async def health(self, request: Request) -> Response:
        meta = self.index.meta
        return JSONResponse({"status": "ok", "rows": len(self.index.products),
                             "dim": int(self.index.features.shape[1]),
                             "checkpoint": meta.get("checkpoint"),
                             "index_type": meta.get("index_type", "exact"),
                             "model_type": self.search.model_type})  # fmt: skip

    async def text(self, request: Request) -> Response:
        text = _text_param(request)
        k = _int_param(request, "k", 8, 1, MAX_K)
        rerank = _int_param(request, "rerank", 0, 0, MAX_RERANK)
        hits = await self.run(search_text, self.search, self.index, self.reader, text, k, rerank)
        return JSONResponse({"query": text, "hits": [_hit_json(h) for h in hits]})

    async def image(self, request: Request) -> Response:
        k = _int_param(request, "k", 8, 1, MAX_K)
        # Decoding and scoring off the event loop: a large JPEG or a 1M-row exact scan
        # takes tens of ms, which would stall every other request.
        picture = await self.run(decode_upload, await _read_upload(request, self.limit))
        query = await self.run(image_query, self.search, picture)
        hits = await self.run(top_products, self.index, query, k)
        return JSONResponse({"hits": [_hit_json(h) for h in hits]})

    async def thumb(self, request: Request) -> Response:
        png = await self.run(self.thumbnail, self.row(request))
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def why(self, request: Request) -> Response:
        text, row = _text_param(request), self.row(request)
        why = await self.run(lambda: explain(self.search, text, self.reader.image(row)))
        picture = await self.run(why_png, why, f"{self.index.products[row]}: {text}")
        return JSONResponse({
            "query": text, "row": row, "product": self.index.products[row],
            "words": [{"word": w, "score": s} for w, s in why.words],
            "grid": int(why.heat.shape[0]), "top_patches": why.top,
            "png": "data:image/png;base64," + base64.b64encode(picture).decode("ascii"),
        })  # fmt: skip


async def _error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    return JSONResponse({"error": getattr(exc, "detail", str(exc))}, status_code=status)


def create_app(
    index: SearchIndex, search: SearchModel, reader: Any, max_upload: int = MAX_UPLOAD
) -> Starlette:
    """The search app over an index, its model and its source reader (all loaded once)."""
    if max_upload < 1:
        raise ValueError(f"max_upload must be >= 1 byte, got {max_upload}")
    service = _Service(index, search, reader, max_upload)
    routes = [
        Route("/", service.home),
        Route("/app.js", service.app_js),
        Route("/health", service.health),
        Route("/search", service.text),
        Route("/search/image", service.image, methods=["POST"]),
        Route("/thumb/{row}", service.thumb),
        Route("/why", service.why),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.worker.shutdown(wait=False)

    return Starlette(routes=routes, exception_handlers={HTTPException: _error}, lifespan=lifespan)
