"""The `fashion_catalogue` builder: your own catalogue (a CSV or JSONL table per split plus an
image folder, data/catalogue.py) for pretraining and retrieval, through the same datasets as
FashionGen. ``mode: pretrain`` gives image-text pairs for both splits (``val`` feeds the mask
statistics); ``mode: retrieval`` makes ``val`` the evaluation set of the sample-100 / full
protocols. ``on_bad_row`` chooses between a clear error and a counted skip (every image is
decoded once while the datasets are built, so a bad one never stops training mid-epoch);
``encoding`` is the tables' text encoding (``auto``: a byte-order mark, else UTF-8). A
``val`` table that is the ``train`` table (same file or identical bytes) is an error.

For a large catalogue read many times, pack it into the FashionGen h5 layout once
(``python -m lavis_syncmask.data.convert``) and use the `fashiongen_*` builders instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from lavis.common.registry import registry
from torch.utils.data import Dataset

from lavis_syncmask.common.paths import config_path
from lavis_syncmask.data.builders import SPLITS, LocalDataBuilder, check_distinct_splits
from lavis_syncmask.data.catalogue import ON_BAD_ROW, CatalogueReader
from lavis_syncmask.data.catalogue_tables import AUTO_ENCODING, check_encoding
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
    option_keys: ClassVar[frozenset[str]] = frozenset({"mode", "on_bad_row", "encoding"})
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
        tables = {
            self.key("build_info", "storage", split): self.data_path(storage[split])
            for split in SPLITS
            if storage.get(split) is not None
        }
        if not tables:
            raise ValueError(f"`{self.key('build_info', 'storage')}` names no split")
        check_distinct_splits(tables)
        encoding = self._encoding()
        return {
            key.rsplit(".", 1)[1]: CatalogueReader(
                table, images, on_bad_row, config_key=key, encoding=encoding
            )
            for key, table in tables.items()
        }

    def _encoding(self) -> str:
        value = self.config.get("encoding") or AUTO_ENCODING
        try:
            return check_encoding(str(value))
        except ValueError as err:
            raise ValueError(f"`{self.key('encoding')}`: {err}") from err

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
