"""The vocabulary shipped inside the package for the `tiny` preset
(``lavis_syncmask/assets/tiny_vocab/vocab.txt``), so `load_model_and_preprocess(...,
model_type="tiny")` works from any working directory right after install.

It is built from the texts of the catalogue ``python -m lavis_syncmask.synthetic --out DIR``
writes with its defaults (600 + 150 products, seed 0; no image is rendered), and it is
deterministic: the `tokenizers` WordPiece trainer breaks ties between equally frequent merges
differently from run to run, so instead every whole word of the catalogue becomes a token (the
grammar has far fewer than 4000 words), plus every character alone and as a ``##``
continuation, so unseen words still split into known pieces. Regenerate it after changing the
synthetic text grammar with::

    python -m lavis_syncmask.cli.vocab --packaged
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from lavis_syncmask.common.paths import TINY_VOCAB_DIR
from lavis_syncmask.synthetic.generate import (
    DEFAULT_PRODUCTS,
    DEFAULT_VAL_PRODUCTS,
    DEFAULT_VOCAB_SIZE,
    build_catalogue,
)


def catalogue_train_texts(products: int, val_products: int, seed: int) -> Iterator[str]:
    """The texts the generator's vocabulary is trained on, in the same order: one
    ``"<name> <description>"`` per train row, consecutive repeats skipped (as
    ``iter_h5_texts`` reads them back from the h5 file)."""
    previous: str | None = None
    for product, view in build_catalogue(products, val_products, seed).rows("train"):
        del view  # every view of a product carries the product's text
        text = f"{product.name.text} {product.description.text}"
        if text != previous:
            previous = text
            yield text


def whole_word_vocab(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> list[str]:
    """BERT special tokens, then every character and its ``##`` form (sorted), then whole
    words by falling count (ties alphabetical) up to ``vocab_size`` tokens, after BERT's
    uncased normalisation and pre-tokenisation. The same texts always give the same list."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    from lavis_syncmask.data.tokenizer import SPECIAL_TOKENS

    normalizer = BertNormalizer(lowercase=True, strip_accents=True)
    splitter = BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        words = splitter.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in words)
    chars = sorted({char for word in counts for char in word})
    head = [*SPECIAL_TOKENS, *chars, *(f"##{char}" for char in chars)]
    taken = set(head)
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in taken]
    return head + words[: max(0, vocab_size - len(head))]


def write_packaged_vocab(out_dir: str | os.PathLike[str] = TINY_VOCAB_DIR) -> Path:
    """Write the tiny preset's ``vocab.txt`` into ``out_dir``; returns its path."""
    texts = catalogue_train_texts(DEFAULT_PRODUCTS, DEFAULT_VAL_PRODUCTS, seed=0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(whole_word_vocab(texts)) + "\n", encoding="utf-8")
    return vocab
