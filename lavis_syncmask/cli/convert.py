"""Command line of the catalogue converter (`data/catalogue_h5.py`): pack a CSV or JSONL table
plus an image folder into the FashionGen h5 layout::

    python -m lavis_syncmask.data.convert --table shop/train.csv --images shop/images \\
        --out data/shop/fashiongen_256_256_train.h5 [--on-bad-row skip] [--encoding cp1252]

A bad row stops the run naming its file and line (``--on-bad-row error``, the default) or is
skipped and counted (``skip``); errors print as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from lavis_syncmask.data.catalogue import ON_BAD_ROW, CatalogueError
from lavis_syncmask.data.catalogue_h5 import convert_catalogue
from lavis_syncmask.data.catalogue_tables import AUTO_ENCODING, check_encoding


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lavis_syncmask.data.convert",
        description="Pack a catalogue table and its images into the FashionGen h5 layout.",
    )
    parser.add_argument("--table", required=True, help="catalogue table (.csv or .jsonl)")
    parser.add_argument("--images", default=None, help="image folder (default: the table's)")
    parser.add_argument("--out", required=True, help="h5 file to write")
    parser.add_argument(
        "--on-bad-row",
        choices=ON_BAD_ROW,
        default="error",
        help="error: stop at the first unusable row; skip: skip unusable rows and count them",
    )
    parser.add_argument(
        "--encoding",
        default=AUTO_ENCODING,
        help="the table's text encoding: auto (a byte-order mark, else UTF-8; the default) or a "
        "Python codec name such as cp1252 or latin-1",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m lavis_syncmask.data.convert`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        check_encoding(args.encoding)
    except ValueError as err:
        parser.error(str(err))
    try:
        written, skipped = convert_catalogue(
            args.table, args.out, args.images, args.on_bad_row, not args.quiet, args.encoding
        )
    except (CatalogueError, FileNotFoundError) as err:  # one line, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {written} rows to {args.out} ({skipped} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
