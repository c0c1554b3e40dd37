"""The plugin's LAVIS builders build every dataset from their default yaml with only the data
root changed, never try to download, and fail with one clear message on missing files."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder
from omegaconf import OmegaConf
from test_data_fashiongen import PRODUCTS, write_fashiongen_h5
from test_data_fashioniq import write_fashioniq

import lavis_syncmask.data.builders  # noqa: F401  (registers the builders)
from lavis_syncmask.common.paths import DATA_ROOT_ENV, config_path
from lavis_syncmask.data.fashiongen_datasets import (
    FashionGenPretrainDataset,
    FashionGenRetrievalDataset,
)
from lavis_syncmask.data.fashiongen_recognition import FashionGenRecognitionDataset
from lavis_syncmask.data.fashioniq import FashionIQEvalSet, FashionIQTripletDataset

DEFAULT_YAMLS = {
    "fashiongen_pretrain": ("fashiongen", "pretrain.yaml"),
    "fashiongen_retrieval": ("fashiongen", "retrieval.yaml"),
    "fashiongen_recognition": ("fashiongen", "recognition.yaml"),
    "fashioniq": ("fashioniq", "defaults.yaml"),
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fashiongen_h5(root / "fashiongen_256_256_train.h5")
    write_fashiongen_h5(root / "fashiongen_256_256_validation.h5", PRODUCTS[1:], sidecar=False)
    write_fashioniq(root / "fashioniq")
    return root


@pytest.fixture(autouse=True)
def _no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("a builder tried to download")

    monkeypatch.setattr(BaseDatasetBuilder, "_download_data", refuse)
    monkeypatch.setattr(BaseDatasetBuilder, "_download_ann", refuse)


def default_cfg(name: str, **overrides: object):
    cfg = OmegaConf.load(config_path("datasets", *DEFAULT_YAMLS[name])).datasets[name]
    return OmegaConf.merge(cfg, overrides)


def build(name: str, **overrides: object) -> dict:
    return registry.get_builder_class(name)(default_cfg(name, **overrides)).build_datasets()


def test_builders_registered_and_import_is_idempotent() -> None:
    again = importlib.import_module("lavis_syncmask.data.builders")
    import lavis_syncmask.data.builders  # noqa: F401, F811

    for name in DEFAULT_YAMLS:
        builder = registry.get_builder_class(name)
        assert builder is not None and issubclass(builder, BaseDatasetBuilder)
        assert Path(builder.default_config_path()).is_absolute()
        assert Path(builder.default_config_path()).exists()
        assert builder is getattr(again, builder.__name__)


def test_pretrain_builder(data_root: Path) -> None:
    datasets = build("fashiongen_pretrain", data_root=str(data_root))
    assert set(datasets) == {"train", "val"}
    train, val = datasets["train"], datasets["val"]
    assert isinstance(train, FashionGenPretrainDataset) and len(train) == 8 and len(val) == 6
    item = train[0]
    assert item["image"].shape == (3, 256, 256) and item["image"].dtype == torch.float32
    assert "visible_spans" in item and "described_patches" not in item  # random crops in train
    assert val.sidecar is None and "visible_spans" not in val[0]  # val has no sidecar here


def test_retrieval_and_recognition_builders(data_root: Path) -> None:
    retrieval = build("fashiongen_retrieval", data_root=str(data_root), text_fields="name")
    assert isinstance(retrieval["train"], FashionGenPretrainDataset)
    assert isinstance(retrieval["val"], FashionGenRetrievalDataset)
    assert retrieval["val"].text == ["Blue jeans", "Red shirt", "Black coat"]
    assert retrieval["val"][0]["image"].shape == (3, 256, 256)
    label_file = data_root / "fashiongen_labels_category.json"
    recognition = build("fashiongen_recognition", data_root=str(data_root), label_key="category")
    assert label_file.exists()
    train, val = recognition["train"], recognition["val"]
    assert isinstance(val, FashionGenRecognitionDataset) and train.label_map == val.label_map
    assert list(val.label_map) == ["JACKETS & COATS", "PANTS", "TOPS"]
    assert val[0]["label"] == 1 and val.label_key == "category"


def test_fashioniq_builder_with_env_root(data_root: Path, monkeypatch) -> None:
    monkeypatch.setenv(DATA_ROOT_ENV, str(data_root))
    datasets = build("fashioniq", gallery="val_union")
    train, val = datasets["train"], datasets["val"]
    assert isinstance(train, FashionIQTripletDataset) and len(train) == 6
    assert isinstance(val, FashionIQEvalSet) and val.gallery == "val_union" and len(val) == 6
    assert train[0]["reference_image"].shape == (3, 256, 256)
    assert val.galleries["dress"].asins == ["DB1", "DB2", "DB3"]
    only_val = build("fashioniq", splits=["val"])
    assert set(only_val) == {"val"} and len(only_val["val"].galleries["shirt"]) == 5


def test_fashioniq_builder_carries_the_evaluation_rules(data_root: Path, monkeypatch) -> None:
    """`gallery` and `exclude_reference` are read by the builder (the `datasets:` section's one
    reader), checked when it is made, and carried by the val set to the syncmask_tgir task."""
    monkeypatch.setenv(DATA_ROOT_ENV, str(data_root))
    assert build("fashioniq", exclude_reference=True)["val"].exclude_reference is True
    assert build("fashioniq")["val"].exclude_reference is False  # the default yaml's
    with pytest.raises(ValueError, match=r"datasets\.fashioniq\.exclude_reference must be true"):
        registry.get_builder_class("fashioniq")(default_cfg("fashioniq", exclude_reference="yes"))
    with pytest.raises(ValueError, match=r"datasets\.fashioniq\.gallery must be one of"):
        registry.get_builder_class("fashioniq")(default_cfg("fashioniq", gallery="all"))


def test_missing_files_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        build("fashiongen_pretrain", data_root=str(tmp_path))
    message = str(err.value)
    for split, name in (("train", "train"), ("val", "validation")):
        assert str(tmp_path / f"fashiongen_256_256_{name}.h5") in message
        assert f"datasets.fashiongen_pretrain.build_info.storage.{split}" in message
    with pytest.raises(FileNotFoundError, match=r"datasets\.fashioniq\.build_info\.storage\.root"):
        build("fashioniq", data_root=str(tmp_path))


def test_config_checks(data_root: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"datasets.fashiongen_pretrain.txt_fields \(did you mean 'text_fields'\?\)",
    ):
        build("fashiongen_pretrain", data_root=str(data_root), txt_fields="name")
    with pytest.raises(ValueError, match="text_fields must be one of"):
        build("fashiongen_pretrain", data_root=str(data_root), text_fields="title")
    only_val = build(
        "fashiongen_pretrain", data_root=str(data_root), build_info={"storage": {"train": None}}
    )
    assert set(only_val) == {"val"}


def test_partial_config_is_merged_over_defaults(data_root: Path) -> None:
    # A run config that names only a train processor still gets the default eval processor.
    cfg = OmegaConf.create(
        {
            "data_root": str(data_root),
            "vis_processor": {"train": {"name": "blip_image_eval", "image_size": 64}},
        }
    )
    datasets = registry.get_builder_class("fashiongen_pretrain")(cfg).build_datasets()
    assert datasets["train"][0]["image"].shape == (3, 64, 64)
    assert datasets["train"][0]["described_patches"].shape == (16, 16)  # resize keeps the grid
    assert datasets["val"][0]["image"].shape == (3, 256, 256)


def test_synthetic_generator_round_trip(tmp_path: Path) -> None:
    pytest.importorskip(
        "lavis_syncmask.synthetic", reason="the synthetic generator is not written yet"
    )
    out = tmp_path / "synthetic"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lavis_syncmask.synthetic",
            "--out",
            str(out),
            "--products",
            "6",
            "--val-products",
            "4",
            "--seed",
            "0",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pretrain = build("fashiongen_pretrain", data_root=str(out))
    for split in ("train", "val"):
        dataset = pretrain[split]
        assert len(dataset) > 0 and dataset.sidecar is not None
        item = dataset[len(dataset) - 1]
        text = item["text_input"]
        assert all(0 <= a < b <= len(text) and text[a:b].strip() for a, b in item["visible_spans"])
    retrieval = build("fashiongen_retrieval", data_root=str(out), text_fields="name+description")
    assert len(retrieval["val"].text) == len(retrieval["val"].product_rows)
    recognition = build("fashiongen_recognition", data_root=str(out))
    assert len(recognition["val"]) > 0
    if (out / "fashioniq").exists():
        fiq = build("fashioniq", data_root=str(out))
        assert len(fiq["train"]) > 0 and len(fiq["val"]) > 0
