"""Offline tokenizers: train a WordPiece vocabulary from FashionGen text, and load a tokenizer
by local path or Hugging Face name (the local cache first; downloaded only when the hub is
reachable and no offline flag is set), failing at once when it cannot be had.

Command line::

    python -m lavis_syncmask.data.tokenizer --h5 data/fashiongen_256_256_train.h5 --out data/vocab
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from transformers import BertTokenizerFast

from lavis_syncmask.common.paths import PACKAGE_DIR, resolve_data_path
from lavis_syncmask.common.weights import offline_reason

HF_HUB_URL = "https://huggingface.co"

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DEFAULT_TEXT_KEYS = ("input_name", "input_description")


def train_wordpiece(
    texts: Iterable[str], out_dir: str | os.PathLike[str], vocab_size: int = 4000
) -> Path:
    """Train an uncased WordPiece vocabulary and write ``out_dir/vocab.txt``.

    The file has BERT's special tokens first, so ``BertTokenizer.from_pretrained(out_dir)``
    and :func:`load_tokenizer` load it unchanged. Returns the vocab path.
    """
    from tokenizers import BertWordPieceTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    wordpiece.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS
    )
    wordpiece.save_model(str(out))
    return out / "vocab.txt"


def iter_h5_texts(h5_path: str | os.PathLike[str], keys: Iterable[str]) -> Iterator[str]:
    """Yield the Latin-1 decoded strings of ``keys`` from a FashionGen h5, one product at a
    time (rows of one product repeat its text, so consecutive duplicates are skipped)."""
    import h5py

    with h5py.File(h5_path, "r") as h5:
        columns = [h5[key] for key in keys]
        previous: tuple[bytes, ...] | None = None
        for row in range(len(columns[0])):
            values = tuple(bytes(col[row].reshape(-1)[0]) for col in columns)
            if values != previous:
                previous = values
                yield " ".join(v.decode("latin-1") for v in values)


def load_tokenizer(name_or_path: str | os.PathLike[str]) -> BertTokenizerFast:
    """A BERT tokenizer from a local folder / ``vocab.txt``, or a Hugging Face name: from the
    local cache, else downloaded when online (see :func:`offline_reason`)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return BertTokenizerFast(vocab_file=str(path), do_lower_case=True)
    if path.is_dir():
        if not (path / "vocab.txt").exists() and not (path / "tokenizer.json").exists():
            raise FileNotFoundError(f"tokenizer folder {path} has no vocab.txt or tokenizer.json")
        return BertTokenizerFast.from_pretrained(str(path), local_files_only=True)
    try:
        return BertTokenizerFast.from_pretrained(str(name_or_path), local_files_only=True)
    except OSError as err:
        # Not cached: fetch it into the Hugging Face cache when the hub is reachable (LAVIS's
        # convention), else fail at once instead of retrying for a minute and a half.
        reason = offline_reason(HF_HUB_URL)
        if reason is None:
            return BertTokenizerFast.from_pretrained(str(name_or_path))
        raise FileNotFoundError(
            f"tokenizer {str(name_or_path)!r} is neither a local path nor in the local Hugging "
            f"Face cache, and it cannot be downloaded now ({reason}). Set the config key "
            "`model.tokenizer` to a folder "
            "holding vocab.txt (the synthetic generator writes one next to its data), train one "
            "with `python -m lavis_syncmask.data.tokenizer --h5 TRAIN.h5 --out DIR`, or copy "
            f"{name_or_path} into the Hugging Face cache on a machine with internet."
        ) from err


def resolve_tokenizer(name_or_path: str) -> BertTokenizerFast:
    """A path that exists as given wins; then a relative path inside the installed package
    (LAVIS's own rule for the paths in its configs; the tiny preset's ``assets/tiny_vocab``),
    then one under the data root; else a Hugging Face name from the local cache."""
    given = Path(name_or_path).expanduser()
    if not given.exists() and not given.is_absolute():
        for candidate in (PACKAGE_DIR / given, resolve_data_path(given)):
            if candidate.exists():
                return load_tokenizer(candidate)
    return load_tokenizer(name_or_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--h5", required=True, help="FashionGen h5 file to read text from")
    parser.add_argument("--out", required=True, help="folder to write vocab.txt into")
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--keys", nargs="+", default=list(DEFAULT_TEXT_KEYS))
    args = parser.parse_args(argv)
    vocab = train_wordpiece(iter_h5_texts(args.h5, args.keys), args.out, args.vocab_size)
    print(f"wrote {vocab} ({sum(1 for _ in open(vocab, encoding='utf-8'))} tokens)")


if __name__ == "__main__":
    main()
