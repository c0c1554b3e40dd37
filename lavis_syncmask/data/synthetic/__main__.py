"""Command line of the synthetic catalogue generator::

    python -m lavis_syncmask.data.synthetic --out data/synthetic --products 600 \
        --val-products 150 --seed 0 [--fashioniq-triplets 150] [--vocab-size 4000] [--quiet]
"""

from __future__ import annotations

import argparse

from lavis_syncmask.data.synthetic.generator import (
    DEFAULT_FASHIONIQ_TRIPLETS,
    DEFAULT_PRODUCTS,
    DEFAULT_VAL_PRODUCTS,
    DEFAULT_VOCAB_SIZE,
    generate_catalogue,
)
from lavis_syncmask.data.synthetic.summary import format_summary, summarize_catalogue


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lavis_syncmask.data.synthetic",
        description="Write the synthetic fashion catalogue (FashionGen h5 + visibility "
        "sidecars, WordPiece vocabulary, FashionIQ tree).",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS, help="train products")
    parser.add_argument("--val-products", type=int, default=DEFAULT_VAL_PRODUCTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fashioniq-triplets",
        type=int,
        default=DEFAULT_FASHIONIQ_TRIPLETS,
        help="train triplets per FashionIQ category (val 40%%, test 20%%); 0 skips FashionIQ",
    )
    parser.add_argument("--fashioniq-format", choices=("png", "jpg"), default="png")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    args = parser.parse_args(argv)
    try:
        out = generate_catalogue(
            args.out,
            products=args.products,
            val_products=args.val_products,
            seed=args.seed,
            fashioniq_triplets=args.fashioniq_triplets,
            vocab_size=args.vocab_size,
            progress=not args.quiet,
            fashioniq_format=args.fashioniq_format,
        )
    except ValueError as err:
        parser.error(str(err))
    if args.quiet:
        print(out)
    else:
        print(f"wrote {out}")
        print(format_summary(summarize_catalogue(out)))


if __name__ == "__main__":
    main()
