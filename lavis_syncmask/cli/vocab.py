"""Vocabulary tool: train a WordPiece `vocab.txt` from a FashionGen h5 file's text.

    python -m lavis_syncmask.cli.vocab --h5 data/fashiongen_256_256_train.h5 --out data/vocab

(console script `syncmask-vocab`). The tiny preset's `tokenizer: vocab` loads such a folder.
``--packaged`` instead rewrites the vocabulary that ships for the tiny preset
(`synthetic/packaged_vocab.py`; `--out` defaults to the package's asset folder), after a change
to the synthetic text grammar.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lavis_syncmask.common.paths import TINY_VOCAB_DIR
from lavis_syncmask.data.formats import VOCAB_KEYS, iter_h5_texts
from lavis_syncmask.data.tokenizer import train_wordpiece
from lavis_syncmask.synthetic.packaged_vocab import write_packaged_vocab


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--h5", help="FashionGen h5 file to read text from")
    source.add_argument(
        "--packaged", action="store_true", help="rewrite the tiny preset's shipped vocabulary"
    )
    parser.add_argument("--out", default=None, help="folder to write vocab.txt into")
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--keys", nargs="+", default=list(VOCAB_KEYS))
    args = parser.parse_args(argv)
    if args.h5 and args.out is None:
        parser.error("--out is required with --h5")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.packaged:
        print(f"wrote {write_packaged_vocab(args.out or TINY_VOCAB_DIR)}")
        return
    vocab = train_wordpiece(iter_h5_texts(args.h5, args.keys), args.out, args.vocab_size)
    with open(vocab, encoding="utf-8") as handle:
        tokens = sum(1 for _ in handle)
    print(f"wrote {vocab} ({tokens} tokens)")


if __name__ == "__main__":
    main()
