"""Vocabulary tool: train a WordPiece `vocab.txt` from a FashionGen h5 file's text.

    python -m lavis_syncmask.cli.vocab --h5 data/fashiongen_256_256_train.h5 --out data/vocab

(console script `syncmask-vocab`). The tiny preset's `tokenizer: vocab` loads such a folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lavis_syncmask.data.formats import VOCAB_KEYS, iter_h5_texts
from lavis_syncmask.data.tokenizer import train_wordpiece


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--h5", required=True, help="FashionGen h5 file to read text from")
    parser.add_argument("--out", required=True, help="folder to write vocab.txt into")
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--keys", nargs="+", default=list(VOCAB_KEYS))
    args = parser.parse_args(argv)
    vocab = train_wordpiece(iter_h5_texts(args.h5, args.keys), args.out, args.vocab_size)
    with open(vocab, encoding="utf-8") as handle:
        tokens = sum(1 for _ in handle)
    print(f"wrote {vocab} ({tokens} tokens)")


if __name__ == "__main__":
    main()
