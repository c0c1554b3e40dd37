"""Offline vocabularies: trained from FashionGen h5 text, loadable by BertTokenizer, and a
missing tokenizer fails at once with instructions."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from transformers import BertTokenizer

from lavis_syncmask.cli.vocab import main
from lavis_syncmask.data.tokenizer import iter_h5_texts, load_tokenizer, resolve_tokenizer


def write_h5(path: Path) -> Path:
    names = [b"Red shirt", b"Red shirt", b"Blue jean", b"Caf\xe9 dress"]
    descriptions = [
        b"Red cotton shirt.",
        b"Red cotton shirt.",
        b"Blue denim.",
        b"Appliqu\xe9 dress.",
    ]
    with h5py.File(path, "w") as h5:
        h5["input_name"] = np.asarray(names, dtype="S").reshape(-1, 1)
        h5["input_description"] = np.asarray(descriptions, dtype="S").reshape(-1, 1)
    return path


def test_texts_are_latin1_and_consecutive_duplicates_skipped(tmp_path: Path) -> None:
    texts = list(iter_h5_texts(write_h5(tmp_path / "t.h5"), ["input_name", "input_description"]))
    assert texts == [
        "Red shirt Red cotton shirt.",
        "Blue jean Blue denim.",
        "Café dress Appliqué dress.",
    ]


def test_cli_writes_a_vocab_that_bert_tokenizer_loads(tmp_path: Path, capsys) -> None:
    main(["--h5", str(write_h5(tmp_path / "t.h5")), "--out", str(tmp_path / "vocab")])
    assert "vocab.txt" in capsys.readouterr().out
    slow = BertTokenizer.from_pretrained(str(tmp_path / "vocab"))
    fast = load_tokenizer(tmp_path / "vocab")
    text = "red cotton shirt with appliqué"
    assert slow.tokenize(text) == fast.tokenize(text)
    assert "[UNK]" not in fast.tokenize("red cotton shirt")
    assert fast.convert_tokens_to_ids("[MASK]") == 4  # BERT's special tokens come first


def test_relative_tokenizer_path_resolves_under_the_data_root(tmp_path: Path, monkeypatch) -> None:
    main(["--h5", str(write_h5(tmp_path / "t.h5")), "--out", str(tmp_path / "vocab")])
    monkeypatch.setenv("SYNCMASK_DATA_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    assert resolve_tokenizer("vocab").tokenize("red") == ["red"]


def test_unknown_tokenizer_fails_fast_with_instructions() -> None:
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="python -m lavis_syncmask.cli.vocab"):
        load_tokenizer("no-such/tokenizer-anywhere")
    assert time.monotonic() - start < 10  # no network retry loop


def test_dataset_data_root_alone_locates_the_tiny_vocab(tmp_path: Path, monkeypatch) -> None:
    """A relative `model.tokenizer` (here the catalogue's own `vocab`) is found under
    `datasets.<b>.data_root`; it used to be looked up only under $SYNCMASK_DATA_ROOT /
    data/synthetic. (Without the key, tiny uses the vocabulary shipped in the package.)"""
    import argparse

    from lavis_syncmask.cli.launcher import prepare
    from lavis_syncmask.synthetic import generate_catalogue

    data = generate_catalogue(tmp_path / "elsewhere", 3, 2, seed=1, fashioniq_triplets=0,
                              progress=False, vocab_size=120)  # fmt: skip
    monkeypatch.delenv("SYNCMASK_DATA_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)  # no data/synthetic here
    root = Path(__file__).resolve().parents[1]
    args = argparse.Namespace(
        cfg_path=str(root / "projects" / "syncmask" / "pretrain_tiny.yaml"),
        options=[
            f"datasets.fashiongen_pretrain.data_root={data}",
            "model.tokenizer=vocab",
            "run.output_dir=out",
        ],
        job_id="vocab",
        imports=[],
    )
    session = prepare(args)
    assert session.cfg.config.model.tokenizer == str(data / "vocab")
    assert len(session.model.tokenizer) == len(load_tokenizer(data / "vocab"))
