"""LAVIS dataset builders of the plugin: `fashiongen_pretrain`, `fashiongen_retrieval`,
`fashiongen_recognition` and `fashioniq` (benchmarks-and-data.md).

Unlike LAVIS's builders these never download anything (the data cannot be fetched): file
locations come from the config, relative to `data_root` (config key, else
``$SYNCMASK_DATA_ROOT``, else ``data/synthetic``), and a missing file is one clear error naming
the path and its config key. The given config is merged over the default yaml, so a run
config only has to state what it changes; unknown keys are an error listing the valid ones.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path
from typing import Any, ClassVar

from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder, load_dataset_config
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from lavis_syncmask.common.keys import reject_unknown
from lavis_syncmask.common.paths import DATA_ROOT_ENV, config_path, resolve_data_path
from lavis_syncmask.data.fashiongen_datasets import (
    FashionGenPretrainDataset,
    FashionGenRetrievalDataset,
)
from lavis_syncmask.data.fashiongen_recognition import (
    FashionGenRecognitionDataset,
    load_or_create_label_map,
)
from lavis_syncmask.data.fashioniq import CATEGORIES, FashionIQ, FashionIQEvalSet
from lavis_syncmask.data.fashioniq import FashionIQTripletDataset as _Triplets
from lavis_syncmask.evaluation.tgir import GALLERIES

SPLITS = ("train", "val")
_COMMON_KEYS = frozenset(
    {"data_type", "type", "data_root", "build_info", "vis_processor", "text_processor"}
)


def check_dataset_names(config: Any) -> None:
    """Every dataset under `datasets:` of a raw run config (the yaml of `--cfg-path`) has a
    registered builder (LAVIS would fail later with a KeyError naming no file)."""
    names = (config.get("datasets", None) or {}).keys()
    reject_unknown("datasets", names, registry.mapping["builder_name_mapping"])


def dataset_roots(cfg: Any) -> list[str]:
    """`datasets.<name>.data_root` of every dataset of a LAVIS `Config` that sets one."""
    roots = []
    for section in (cfg.datasets_cfg or {}).values():
        root = section.get("data_root", None) if hasattr(section, "get") else None
        if root:
            roots.append(str(root))
    return roots


def dataset_builder(cfg: Any, name: str, **overrides: Any) -> BaseDatasetBuilder:
    """The registered builder of `datasets.<name>` of a LAVIS `Config`, with `overrides`
    merged over that section (e.g. `data_root=` a folder of one's own)."""
    return registry.get_builder_class(name)(OmegaConf.merge(cfg.datasets_cfg[name], overrides))


def _require_all(paths: dict[str, Path]) -> None:
    """One FileNotFoundError listing every missing path with the config key that sets it."""
    missing = {key: path for key, path in paths.items() if not path.exists()}
    if not missing:
        return
    lines = "; ".join(f"{path} (config key `{key}`)" for key, path in missing.items())
    raise FileNotFoundError(
        f"missing data: {lines}. Nothing is downloaded: put the files there, or set "
        f"`data_root` / ${DATA_ROOT_ENV} / the keys above. For the synthetic catalogue run "
        "`python -m lavis_syncmask.synthetic --out DIR`."
    )


def _same_data(a: Path, b: Path) -> str | None:
    """How ``a`` and ``b`` are the same data ("the same file", "identical content"), or None.
    Files of equal size are compared byte by byte, stopping at the first difference, so two
    real splits cost a few reads and only true copies are read whole."""
    if not (a.is_file() and b.is_file()):
        return None
    if os.path.samefile(a, b):
        return "the same file"
    if a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False):
        return "identical content"
    return None


def check_distinct_splits(files: dict[str, Path]) -> None:
    """Refuse a validation file that is the train file (``files``: config key -> path): its
    numbers would measure memorisation, silently."""
    train = {key: path for key, path in files.items() if key.endswith(".train")}
    val = {key: path for key, path in files.items() if key.endswith(".val")}
    for train_key, train_path in train.items():
        for val_key, val_path in val.items():
            same = _same_data(train_path, val_path)
            if same is not None:
                raise ValueError(
                    f"`{val_key}` ({val_path}) and `{train_key}` ({train_path}) are {same}: "
                    "evaluating on the training data measures memorisation. Point "
                    f"`{val_key}` at held-out data, or set it to null to skip that split."
                )


class LocalDataBuilder(BaseDatasetBuilder):
    """Shared machinery: config merge and checks, processors per split, file resolution,
    and `build_datasets` without the download / barrier of `BaseDatasetBuilder`."""

    name: ClassVar[str] = ""
    option_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cfg: Any = None) -> None:
        default = load_dataset_config(self.default_config_path())
        if cfg is None:
            given = OmegaConf.create()
        elif isinstance(cfg, (str, os.PathLike)):
            given = load_dataset_config(str(cfg))
        else:
            given = cfg
        super().__init__(OmegaConf.merge(default, given))
        self._validate()

    def _validate(self) -> None:
        reject_unknown(f"datasets.{self.name}", self.config.keys(), _COMMON_KEYS | self.option_keys)
        for proc in ("vis_processor", "text_processor"):
            extra = set(self.config.get(proc) or {}) - {"train", "eval"}
            if extra:
                raise ValueError(
                    f"datasets.{self.name}.{proc}: unknown split(s) {sorted(extra)}; "
                    "valid: ['eval', 'train']"
                )

    def key(self, *parts: str) -> str:
        return ".".join(("datasets", self.name, *parts))

    def storage(self) -> DictConfig:
        storage = self.config.get("build_info", {}).get("storage")
        if storage is None:
            raise ValueError(f"config key `{self.key('build_info', 'storage')}` is not set")
        return storage

    def data_path(self, value: str | os.PathLike[str]) -> Path:
        return resolve_data_path(value, self.config.get("data_root"))

    def processors(self, split: str) -> tuple[Any, Any]:
        mode = "train" if split == "train" else "eval"
        return self.vis_processors[mode], self.text_processors[mode]

    def build_datasets(self) -> dict[str, Dataset]:
        # Nothing to download, so no main-process step and no barrier: every rank builds.
        return self.build()


class FashionGenBuilder(LocalDataBuilder):
    """FashionGen h5 per split: ``build_info.storage.{train,val}`` (null skips a split)."""

    def split_files(self) -> dict[str, Path]:
        storage = self.storage()
        unknown = set(storage.keys()) - set(SPLITS)
        if unknown:
            raise ValueError(
                f"`{self.key('build_info', 'storage')}`: unknown split(s) {sorted(unknown)}; "
                f"valid: {list(SPLITS)}"
            )
        files = {
            self.key("build_info", "storage", s): self.data_path(storage[s])
            for s in SPLITS
            if storage.get(s) is not None
        }
        _require_all(files)
        check_distinct_splits(files)
        return {key.rsplit(".", 1)[1]: path for key, path in files.items()}

    def sidecar_setting(self, split: str) -> str | None:
        setting = self.config.get("sidecar", "auto")
        if isinstance(setting, DictConfig):  # a path per split
            setting = setting.get(split)
        if setting in (None, "auto"):
            return setting
        return str(self.data_path(setting))

    def pretrain_dataset(self, split: str, path: Path) -> FashionGenPretrainDataset:
        vis, text = self.processors(split)
        return FashionGenPretrainDataset(
            path,
            vis,
            text,
            text_fields=self.config.get("text_fields", "description"),
            sidecar=self.sidecar_setting(split),
            described_patches=self.config.get("described_patches", "auto"),
            config_key=self.key("build_info", "storage", split),
        )


@registry.register_builder("fashiongen_pretrain")
class FashionGenPretrainBuilder(FashionGenBuilder):
    """Image-text pairs of both splits (``val`` for monitoring and mask statistics)."""

    name = "fashiongen_pretrain"
    option_keys = frozenset({"text_fields", "sidecar", "described_patches"})
    train_dataset_cls = eval_dataset_cls = FashionGenPretrainDataset
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "fashiongen", "pretrain.yaml")}

    def build(self) -> dict[str, Dataset]:
        self.build_processors()
        return {split: self.pretrain_dataset(split, p) for split, p in self.split_files().items()}


@registry.register_builder("fashiongen_retrieval")
class FashionGenRetrievalBuilder(FashionGenBuilder):
    """``train``: image-text pairs for fine-tuning; ``val``: the retrieval evaluation set."""

    name = "fashiongen_retrieval"
    option_keys = frozenset({"text_fields", "sidecar", "described_patches"})
    train_dataset_cls, eval_dataset_cls = FashionGenPretrainDataset, FashionGenRetrievalDataset
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "fashiongen", "retrieval.yaml")}

    def build(self) -> dict[str, Dataset]:
        self.build_processors()
        datasets: dict[str, Dataset] = {}
        for split, path in self.split_files().items():
            if split == "train":
                datasets[split] = self.pretrain_dataset(split, path)
                continue
            vis, text = self.processors(split)
            datasets[split] = FashionGenRetrievalDataset(
                path,
                vis,
                text,
                text_fields=self.config.get("text_fields", "description"),
                config_key=self.key("build_info", "storage", split),
            )
        return datasets


@registry.register_builder("fashiongen_recognition")
class FashionGenRecognitionBuilder(FashionGenBuilder):
    """Category / subcategory recognition; the label map comes from the train file."""

    name = "fashiongen_recognition"
    option_keys = frozenset({"text_fields", "label_key", "label_map", "unseen_labels"})
    train_dataset_cls = eval_dataset_cls = FashionGenRecognitionDataset
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "fashiongen", "recognition.yaml")}

    def build(self) -> dict[str, Dataset]:
        self.build_processors()
        files = self.split_files()
        label_key = self.config.get("label_key", "subcategory")
        map_setting = self.config.get("label_map")
        map_path = self.data_path(map_setting) if map_setting else None
        if "train" not in files and (map_path is None or not map_path.exists()):
            raise ValueError(
                f"the label map needs the train file (`{self.key('build_info', 'storage', 'train')}`)"
                f" or an existing `{self.key('label_map')}`"
            )
        label_map = load_or_create_label_map(files.get("train", ""), label_key, map_path)
        datasets: dict[str, Dataset] = {}
        for split, path in files.items():
            vis, text = self.processors(split)
            datasets[split] = FashionGenRecognitionDataset(
                path,
                label_map,
                vis,
                text,
                text_fields=self.config.get("text_fields", "description"),
                label_key=label_key,
                unseen_labels=self.config.get("unseen_labels", "error"),
                config_key=self.key("build_info", "storage", split),
            )
        return datasets


@registry.register_builder("fashioniq")
class FashionIQBuilder(LocalDataBuilder):
    """FashionIQ under ``build_info.storage.root``: ``train`` = triplets of ``categories``;
    ``val`` = a :class:`FashionIQEvalSet` (queries + galleries under ``gallery``)."""

    name = "fashioniq"
    # `gallery` and `exclude_reference` are evaluation rules: checked here, carried by the val
    # set, applied by the syncmask_tgir task.
    option_keys = frozenset({"categories", "gallery", "splits", "exclude_reference"})
    train_dataset_cls, eval_dataset_cls = _Triplets, FashionIQEvalSet
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "fashioniq", "defaults.yaml")}

    def _validate(self) -> None:
        super()._validate()
        gallery, exclude = self.config.get("gallery"), self.config.get("exclude_reference")
        if gallery not in GALLERIES:
            raise ValueError(f"{self.key('gallery')} must be one of {GALLERIES}, got {gallery!r}")
        if not isinstance(exclude, bool):
            raise ValueError(
                f"{self.key('exclude_reference')} must be true or false, got {exclude!r}"
            )

    def build(self) -> dict[str, Dataset]:
        self.build_processors()
        root_key = self.key("build_info", "storage", "root")
        if self.storage().get("root") is None:
            raise ValueError(f"config key `{root_key}` is not set")
        root = self.data_path(self.storage().root)
        _require_all({root_key: root})
        data = FashionIQ(root, root_key)
        categories = list(self.config.get("categories", CATEGORIES))
        splits = list(self.config.get("splits", SPLITS))
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"`{self.key('splits')}`: unknown {sorted(unknown)}; valid {SPLITS}")
        datasets: dict[str, Dataset] = {}
        if "train" in splits:
            vis, text = self.processors("train")
            datasets["train"] = _Triplets(data, categories, "train", vis, text)
        if "val" in splits:
            vis, text = self.processors("val")
            datasets["val"] = FashionIQEvalSet(
                data,
                categories,
                self.config.gallery,
                vis,
                text,
                exclude_reference=self.config.exclude_reference,
            )
        return datasets
