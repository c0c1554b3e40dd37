"""Reliability, round two (issue 20), FashionGen / evaluation inputs: product ids stored as
bytes, an h5 with no rows, and a validation file that is the train file. Before, these gave
`invalid literal for int()` with no file or key, "the texts contain no words", and an
evaluation without a word."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf
from test_data_fashiongen import write_fashiongen_h5

from lavis_syncmask.data.builders import FashionGenPretrainBuilder, FashionGenRetrievalBuilder
from lavis_syncmask.data.fashiongen_datasets import (
    FashionGenPretrainDataset,
    FashionGenRetrievalDataset,
)


def test_product_ids_stored_as_bytes_name_file_and_key(tmp_path: Path) -> None:
    path = write_fashiongen_h5(tmp_path / "ids.h5", sidecar=False)
    with h5py.File(path, "a") as h5:
        n = h5["input_productID"].shape[0]
        del h5["input_productID"]
        h5["input_productID"] = np.asarray([b"P888352"] * n).reshape(n, 1)
    with pytest.raises(ValueError, match=rf"{path} .*key 'input_productID' holds .*b'P888352'"):
        FashionGenRetrievalDataset(path)


@pytest.mark.parametrize("dataset", [FashionGenPretrainDataset, FashionGenRetrievalDataset])
def test_an_h5_with_no_rows_says_so(tmp_path: Path, dataset: type) -> None:
    path = write_fashiongen_h5(tmp_path / "empty.h5", products=[], sidecar=False)
    with pytest.raises(ValueError, match=rf"file {path} \(config key `h5_path`\) has no rows"):
        dataset(path)


def _config(root: Path, val: str) -> object:
    storage = {"train": "fashiongen_256_256_train.h5", "val": val}
    return OmegaConf.create({"data_root": str(root), "build_info": {"storage": storage}})


@pytest.mark.parametrize("how", ["same path", "symlink", "copy"])
def test_validation_file_that_is_the_train_file_is_refused(tmp_path: Path, how: str) -> None:
    train = write_fashiongen_h5(tmp_path / "fashiongen_256_256_train.h5", sidecar=False)
    val = "fashiongen_256_256_train.h5"
    if how == "symlink":
        os.symlink(train, tmp_path / "val.h5")
        val = "val.h5"
    elif how == "copy":
        shutil.copy(train, tmp_path / "val.h5")
        val = "val.h5"
    same = "identical content" if how == "copy" else "the same file"
    for builder in (FashionGenRetrievalBuilder, FashionGenPretrainBuilder):
        with pytest.raises(ValueError, match=rf"storage\.val` \(.*\) and .* are {same}"):
            builder(_config(tmp_path, val)).build_datasets()
    if how == "copy":  # only true copies: other pixels in a file of the same size build
        with h5py.File(tmp_path / "val.h5", "a") as h5:
            h5["input_image"][0] = 7
        datasets = FashionGenRetrievalBuilder(_config(tmp_path, val)).build_datasets()
        assert len(datasets["val"]) == len(datasets["train"])
