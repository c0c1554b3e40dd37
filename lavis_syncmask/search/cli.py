"""`python -m lavis_syncmask.search index|query`: the command line of product search.

    python -m lavis_syncmask.search index --checkpoint CKPT --data DATA [--images DIR] --out INDEX
    python -m lavis_syncmask.search query --index INDEX (--text "..." | --image FILE)
        [--k 8] [--rerank-itm K] [--sheet hits.png]

``--data``: a FashionGen-layout h5 (FashionGen, the synthetic catalogue, a converted catalogue)
or a catalogue table (.csv / .jsonl, images under ``--images``). A query reopens the indexed
source (its path is in the index) to draw the hits and to re-rank them with ITM.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

import torch

from lavis_syncmask.data.catalogue import ON_BAD_ROW


def _index(args: argparse.Namespace) -> int:
    from lavis_syncmask.search.index import build_index
    from lavis_syncmask.search.model import load_search_model
    from lavis_syncmask.search.source import open_source

    reader = open_source(args.data, args.images, args.on_bad_row)
    search = load_search_model(args.checkpoint, args.model_type, args.device)
    meta = build_index(
        search, reader, args.out, {"data": args.data, "images": args.images},
        batch_size=args.batch_size, workers=args.workers, progress=not args.quiet,
    )  # fmt: skip
    rate = meta["rows"] / max(meta["seconds"], 1e-9)
    print(f"indexed {meta['rows']} rows ({meta['dim']}-d) into {args.out} "
          f"in {meta['seconds']:.1f} s ({rate:.1f} rows/s)")  # fmt: skip
    return 0


def _query(args: argparse.Namespace) -> int:
    from lavis_syncmask.search.model import load_search_model
    from lavis_syncmask.search.query import (
        SearchIndex,
        image_query,
        rerank_itm,
        text_query,
        top_products,
    )
    from lavis_syncmask.search.sheet import contact_sheet
    from lavis_syncmask.search.source import open_source

    if (args.text is None) == (args.image is None):
        raise SystemExit("give exactly one of --text and --image")
    if args.rerank_itm and args.text is None:
        raise SystemExit("--rerank-itm needs a --text query (ITM scores a text against images)")
    index = SearchIndex.load(args.index)
    search = load_search_model(args.checkpoint or index.meta["checkpoint"], None, args.device)
    query = (
        text_query(search, args.text) if args.text is not None else image_query(search, args.image)
    )
    hits = top_products(index, query, max(args.k, args.rerank_itm))
    reader = open_source(index.meta["data"], index.meta.get("images"), "skip")
    if len(reader) != index.meta["rows"]:  # rows are addressed by position
        raise ValueError(
            f"{index.meta['data']} has {len(reader)} usable rows, the index {index.meta['rows']}: "
            "the data changed since indexing; index it again"
        )
    if args.rerank_itm:
        hits = (
            rerank_itm(search, reader, args.text, hits[: args.rerank_itm]) + hits[args.rerank_itm :]
        )
    hits = hits[: args.k]
    for rank, hit in enumerate(hits, start=1):
        itm = f"  itm {hit.itm:.3f}" if hit.itm is not None else ""
        print(f"{rank:>3}. {hit.product}  itc {hit.score:.4f}{itm}  {hit.text[:80]}")
    title = f"query: {args.text!r}" if args.text is not None else f"query image: {args.image}"
    sheet = contact_sheet(reader, hits, title, args.sheet)
    print(f"contact sheet: {sheet}")
    if args.json:
        print(json.dumps([hit.__dict__ for hit in hits]))
    return 0


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
    for command in (index, query):
        command.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        command.add_argument(
            "--threads", type=int, default=None,
            help="torch CPU threads (default: torch's); 1 is fastest on a busy shared machine",
        )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if getattr(args, "rerank_itm", 0) < 0:
        raise SystemExit("--rerank-itm must be >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return _index(args) if args.command == "index" else _query(args)
    except (ValueError, FileNotFoundError, KeyError) as err:  # bad input: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
