"""Command line of the synthetic catalogue generator (console script `syncmask-synthetic`)::

    python -m lavis_syncmask.synthetic --out DIR --products N --val-products M --seed S \
        [--fashioniq-triplets K] [--vocab-size V] [--fashioniq-format png|jpg] [--quiet]

Shows a progress bar while generating and prints the catalogue summary at the end; ``--quiet``
prints only the output folder.
"""

from __future__ import annotations

import argparse

from lavis_syncmask.synthetic.generate import (
    DEFAULT_FASHIONIQ_TRIPLETS,
    DEFAULT_PRODUCTS,
    DEFAULT_VAL_PRODUCTS,
    DEFAULT_VOCAB_SIZE,
    generate_catalogue,
)
from lavis_syncmask.synthetic.summary import format_summary, summarize_catalogue


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lavis_syncmask.synthetic",
        description="Write a synthetic fashion catalogue in the FashionGen / FashionIQ formats.",
    )
    parser.add_argument(
        "--out", default="data/synthetic", help="output folder (default: %(default)s)"
    )
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS, help="train products")
    parser.add_argument(
        "--val-products", type=int, default=DEFAULT_VAL_PRODUCTS, help="validation products"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fashioniq-triplets",
        type=int,
        default=DEFAULT_FASHIONIQ_TRIPLETS,
        help="train triplets per FashionIQ category (val/test: 40%% of it; 0: no FashionIQ)",
    )
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    parser.add_argument("--fashioniq-format", choices=("png", "jpg"), default="png")
    parser.add_argument(
        "--compression",
        choices=("gzip", "lzf", "none"),
        default="gzip",
        help="h5 image compression (default: %(default)s)",
    )
    parser.add_argument(
        "--invisible-boost",
        type=float,
        default=0.0,
        help="0..1: how much of each text is invisible in a view (view-limited details such as "
        "back zips and front prints become more frequent; default %(default)s = unchanged)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = generate_catalogue(
        args.out,
        args.products,
        args.val_products,
        args.seed,
        args.fashioniq_triplets,
        progress=not args.quiet,
        vocab_size=args.vocab_size,
        fashioniq_image_format=args.fashioniq_format,
        compression=args.compression,
        invisible_boost=args.invisible_boost,
    )
    if not args.quiet:
        print(format_summary(summarize_catalogue(out)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
