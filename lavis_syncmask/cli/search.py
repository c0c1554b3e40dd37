"""`python -m lavis_syncmask.search index|query|serve`: the command line of product search.

    python -m lavis_syncmask.search index --checkpoint CKPT --data DATA [--images DIR] --out INDEX
    python -m lavis_syncmask.search query --index INDEX (--text "..." | --image FILE)
        [--k 8] [--rerank-itm K] [--sheet hits.png]
    python -m lavis_syncmask.search serve --index INDEX [--host 127.0.0.1] [--port 8000]

``--data``: a FashionGen-layout h5 (FashionGen, the synthetic catalogue, a converted catalogue)
or a catalogue table (.csv / .jsonl, images under ``--images``). A query reopens the indexed
source (its path is in the index) to draw the hits and to re-rank them with ITM, and refuses it
when its rows, texts or images or the checkpoint are not the indexed ones (see
`lavis_syncmask.search.fingerprint`; ``--rehash`` re-hashes every image). Bad input (numbers out
of range, a device torch cannot use, an unreadable ``--image``, an empty index) is a one-line
``error:`` and exit status 2, checked before the model loads.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lavis_syncmask.data.catalogue import ON_BAD_ROW
from lavis_syncmask.search.ann import INDEX_TYPES


def _index(args: argparse.Namespace) -> int:
    from lavis_syncmask.search.index import build_index, check_replaceable
    from lavis_syncmask.search.model import load_search_model
    from lavis_syncmask.search.source import open_source

    check_replaceable(Path(args.out).expanduser().absolute())  # before the model loads
    # The resolved folder, as a query reopens it: the rows' image paths then match.
    images = str(Path(args.images).expanduser().resolve()) if args.images else None
    reader = open_source(args.data, images, args.on_bad_row)
    search = load_search_model(args.checkpoint, args.model_type, args.device)
    data = {"data": args.data, "images": images, "on_bad_row": args.on_bad_row}
    meta = build_index(search, reader, args.out, data, batch_size=args.batch_size,
                       workers=args.workers, progress=not args.quiet,
                       index_type=args.index_type)  # fmt: skip
    rate = meta["rows"] / max(meta["seconds"], 1e-9)
    print(f"indexed {meta['rows']} rows ({meta['dim']}-d) into {args.out} "
          f"in {meta['seconds']:.1f} s ({rate:.1f} rows/s)")  # fmt: skip
    return 0


def _print_hits(hits: list[Any]) -> None:
    for rank, hit in enumerate(hits, start=1):
        itm = f"  itm {hit.itm:.3f}" if hit.itm is not None else ""
        print(f"{rank:>3}. {hit.product}  itc {hit.score:.4f}{itm}  {hit.text[:80]}")


def _query(args: argparse.Namespace) -> int:
    from lavis_syncmask.search.query import (
        image_query,
        open_searchable,
        query_image,
        search_text,
        top_products,
    )
    from lavis_syncmask.search.sheet import contact_sheet

    if (args.text is None) == (args.image is None):
        raise SystemExit("give exactly one of --text and --image")
    if args.rerank_itm and args.text is None:
        raise SystemExit("--rerank-itm needs a --text query (ITM scores a text against images)")
    picture = query_image(args.image) if args.image is not None else None  # bad file: fail now
    index, reader, search = open_searchable(args.index, args.checkpoint, args.device, args.rehash)
    if picture is None:
        hits = search_text(search, index, reader, args.text, args.k, args.rerank_itm)
    else:
        hits = top_products(index, image_query(search, picture), args.k)
    _print_hits(hits)
    title = f"query: {args.text!r}" if args.text is not None else f"query image: {args.image}"
    sheet = contact_sheet(reader, hits, title, args.sheet)
    print(f"contact sheet: {sheet}")
    if args.json:
        print(json.dumps([hit.__dict__ for hit in hits]))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lavis_syncmask.search.query import open_searchable
    from lavis_syncmask.search.service import create_app

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.warning("serving on %s: reachable from other machines, with no authentication",
                        args.host)  # fmt: skip
    index, reader, search = open_searchable(args.index, args.checkpoint, args.device, args.rehash)
    app = create_app(index, search, reader, max_upload=args.max_upload_mb << 20)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def check_device(name: str) -> None:
    """``--device`` names a device torch can use here: cpu, cuda[:N] with that GPU, or mps."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"--device {name!r} is not a torch device ({err}); use cpu or cuda"
        ) from err
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: torch sees no CUDA GPU here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: torch sees {count} CUDA GPU(s), cuda:0 to "
                             f"cuda:{count - 1}")  # fmt: skip
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "mps"):
        raise ValueError(f"--device {name}: use cpu, cuda[:N] or mps")


def check_args(args: argparse.Namespace) -> None:
    """Numbers and the device, checked before anything loads (one-line errors)."""
    minimum = {"threads": 1, "k": 1, "rerank_itm": 0, "batch_size": 1, "workers": 0,
               "port": 0, "max_upload_mb": 1}  # fmt: skip
    for name, low in minimum.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be >= {low}, got {value}")
    if getattr(args, "port", None) is not None and args.port > 65535:
        raise ValueError(f"--port must be <= 65535, got {args.port}")
    check_device(args.device)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lavis_syncmask.search", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    index = sub.add_parser("index", help="index a catalogue's images")
    index.add_argument(
        "--checkpoint",
        required=True,
        help="a runner checkpoint (or a state dict with --model-type)",
    )
    index.add_argument("--model-type", default=None, help="tiny | base, for a bare state dict")
    index.add_argument(
        "--data", required=True, help="FashionGen-layout .h5, or a catalogue .csv / .jsonl"
    )
    index.add_argument(
        "--images", default=None, help="image folder of a catalogue table (default: the table's)"
    )
    index.add_argument(
        "--on-bad-row",
        choices=ON_BAD_ROW,
        default="error",
        help="catalogue tables: error or skip and count",
    )
    index.add_argument("--out", required=True, help="index folder to write")
    index.add_argument(
        "--index-type", choices=INDEX_TYPES, default="exact",
        help="exact (default), or approximate search for large catalogues: ivf | hnsw (FAISS)",
    )  # fmt: skip
    index.add_argument("--batch-size", type=int, default=64)
    index.add_argument("--workers", type=int, default=0, help="DataLoader workers decoding images")
    index.add_argument("--quiet", action="store_true")
    query = sub.add_parser("query", help="search an index")
    query.add_argument("--index", required=True, help="index folder")
    query.add_argument("--text", default=None, help="what to look for")
    query.add_argument("--image", default=None, help="or an image file to find similar products")
    query.add_argument("--k", type=int, default=8, help="products to return")
    query.add_argument(
        "--rerank-itm",
        type=int,
        default=0,
        metavar="K",
        help="re-rank the first K products with ITM (text queries)",
    )
    query.add_argument("--sheet", default="search_hits.png", help="contact sheet PNG to write")
    query.add_argument(
        "--checkpoint", default=None, help="default: the one the index was built with"
    )
    query.add_argument("--json", action="store_true", help="also print the hits as JSON")
    query.add_argument(
        "--rehash", action="store_true",
        help="re-hash every source image to check it is the indexed one (default: only the "
        "images whose file changed size or time since indexing)",
    )  # fmt: skip
    serve = sub.add_parser("serve", help="serve an index over HTTP (JSON API and web page)")
    serve.add_argument("--index", required=True, help="index folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--checkpoint", default=None, help="default: the one the index was built with"
    )
    serve.add_argument("--max-upload-mb", type=int, default=8, help="largest image upload, MiB")
    serve.add_argument("--rehash", action="store_true", help="as for query, at start-up")
    for command in (index, query, serve):
        command.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        command.add_argument(
            "--threads", type=int, default=None,
            help="torch CPU threads (default: torch's); 1 is fastest on a busy shared machine",
        )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        check_args(args)
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        return {"index": _index, "query": _query, "serve": _serve}[args.command](args)
    except (ValueError, OSError, KeyError, ImportError) as err:  # bad input: one line
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
