"""The `fashion_catalogue` builder: your own catalogue (a CSV or JSONL table per split plus an
image folder, data/catalogue.py) for pretraining and retrieval, through the same datasets as
FashionGen. ``mode: pretrain`` gives image-text pairs for both splits (``val`` feeds the mask
statistics); ``mode: retrieval`` makes ``val`` the evaluation set of the sample-100 / full
protocols. ``on_bad_row`` chooses between a clear error and a counted skip.

For a large catalogue read many times, pack it into the FashionGen h5 layout once
(``python -m lavis_syncmask.data.convert``) and use the `fashiongen_*` builders instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from lavis.common.registry import registry
from torch.utils.data import Dataset

from lavis_syncmask.common.paths import config_path
from lavis_syncmask.data.builders import SPLITS, LocalDataBuilder
from lavis_syncmask.data.catalogue import ON_BAD_ROW, CatalogueReader
from lavis_syncmask.data.fashiongen_datasets import (
    FashionGenPretrainDataset,
    FashionGenRetrievalDataset,
)

MODES = ("pretrain", "retrieval")
STORAGE_KEYS = (*SPLITS, "images")


@registry.register_builder("fashion_catalogue")
class FashionCatalogueBuilder(LocalDataBuilder):
    """Tables under ``build_info.storage.{train,val}`` (null skips a split), images under
    ``build_info.storage.images`` (null: next to each table)."""

    name = "fashion_catalogue"
    option_keys: ClassVar[frozenset[str]] = frozenset({"mode", "on_bad_row"})
    train_dataset_cls = FashionGenPretrainDataset
    eval_dataset_cls = FashionGenRetrievalDataset
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "catalogue", "defaults.yaml")}

    def _option(self, key: str, valid: tuple[str, ...]) -> str:
        value = self.config.get(key)
        if value not in valid:
            raise ValueError(f"`{self.key(key)}` must be one of {list(valid)}, got {value!r}")
        return value

    def readers(self) -> dict[str, CatalogueReader]:
        storage = self.storage()
        unknown = set(storage.keys()) - set(STORAGE_KEYS)
        if unknown:
            raise ValueError(
                f"`{self.key('build_info', 'storage')}`: unknown key(s) {sorted(unknown)}; "
                f"valid: {list(STORAGE_KEYS)}"
            )
        on_bad_row = self._option("on_bad_row", ON_BAD_ROW)
        images: Path | None = None
        if storage.get("images") is not None:
            images = self.data_path(storage.images)
            if not images.is_dir():
                raise FileNotFoundError(
                    f"{images} is not a folder (config key `{self.key('build_info', 'storage', 'images')}`)"
                )
        readers = {}
        for split in SPLITS:
            if storage.get(split) is None:
                continue
            key = self.key("build_info", "storage", split)
            readers[split] = CatalogueReader(
                self.data_path(storage[split]), images, on_bad_row, config_key=key
            )
        if not readers:
            raise ValueError(f"`{self.key('build_info', 'storage')}` names no split")
        return readers

    def build(self) -> dict[str, Dataset]:
        self.build_processors()
        mode = self._option("mode", MODES)
        datasets: dict[str, Dataset] = {}
        for split, reader in self.readers().items():
            vis, text = self.processors(split)
            key = self.key("build_info", "storage", split)
            if split == "val" and mode == "retrieval":
                datasets[split] = FashionGenRetrievalDataset(reader, vis, text, config_key=key)
            else:
                datasets[split] = FashionGenPretrainDataset(
                    reader, vis, text, sidecar=None, config_key=key
                )
        return datasets
