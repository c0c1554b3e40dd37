"""How the launchers read a run config: the yaml of `--cfg-path` and the `--options` entries,
checked before LAVIS's `Config` merges them, and the model section checked after.

LAVIS's own reading drops or mislabels what a user wrote: a trailing `--options` key without a
value vanishes (its pairs are zipped), a yaml whose top level is a list fails with "dictionary
update sequence element #0", and `model.model_type=base` in `--options` is looked up under a
key the dot-list never has, so the recipe's preset is built and only the label says "base".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from lavis.common.config import Config
from omegaconf import DictConfig, OmegaConf

from lavis_syncmask.common.keys import kind_of

if TYPE_CHECKING:
    from lavis_syncmask.runner.settings import RunSettings

#: `model.*` keys a launcher takes out of the model config before the model is built.
LAUNCHER_MODEL_KEYS = frozenset({"checkpoint"})


def parse_options(options: Sequence[str] | None) -> list[str]:
    """`--options` as `key=value` entries. Either every entry is `key=value`, or (LAVIS's other
    form) they alternate `key value`; a key without a value, or the two forms mixed, is an
    error naming the entry."""
    entries = list(options or [])
    if not entries:
        return []
    if "=" in entries[0]:
        for entry in entries:
            _check_entry(entry)
        return entries
    keys, values = entries[0::2], entries[1::2]
    for key in keys:
        if "=" in key:
            raise ValueError(
                f"--options {key!r}: write every entry as key=value, or every pair as "
                "`key value`, not both"
            )
    if len(keys) > len(values):
        raise ValueError(f"--options {keys[-1]!r} has no value: write {keys[-1]}=VALUE")
    pairs = [f"{key}={value}" for key, value in zip(keys, values, strict=True)]
    for entry in pairs:
        _check_entry(entry)
    return pairs


def _check_entry(entry: str) -> None:
    key, sep, value = entry.partition("=")
    if not sep:
        raise ValueError(f"--options {entry!r} has no value: write {entry}=VALUE")
    if not key.strip() or key.startswith(".") or key.endswith(".") or ".." in key:
        raise ValueError(f"--options {entry!r}: {key!r} is not a dotted config key")
    if not value:
        # OmegaConf reads `key=` as null: say so rather than clear a setting by accident.
        raise ValueError(f"--options {entry!r} has no value: write {key}=null to unset it")


def load_mapping(path: str | Path, what: str = "--cfg-path") -> DictConfig:
    """The yaml at `path` through OmegaConf; its top level must be a mapping (or empty)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what}: no config file at {path}")
    with open(path, encoding="utf-8") as handle:
        top = yaml.safe_load(handle)
    if top is not None and not isinstance(top, dict):
        raise ValueError(
            f"the top level of {path} must be a mapping (run: / model: / datasets:), "
            f"got {kind_of(top)}"
        )
    return OmegaConf.load(path)  # type: ignore[return-value]


class SyncMaskConfig(Config):
    """LAVIS's `Config`, where `model.arch` / `model.model_type` given in `--options` choose the
    model's preset yaml (LAVIS convention: `PRETRAINED_MODEL_CONFIG_DICT[model_type]`), and a
    model type that is not a preset is an error listing the valid ones."""

    def __init__(self, args: argparse.Namespace) -> None:
        checked = argparse.Namespace(**vars(args))
        checked.options = parse_options(getattr(args, "options", None))
        super().__init__(checked)

    @staticmethod
    def build_model_config(config: Any, **kwargs: Any) -> Any:
        # LAVIS passes the parsed `--options` as keyword arguments, one per top-level section.
        user = kwargs.get("model")
        user = user if isinstance(user, Mapping) else {}
        chosen = {key: user[key] for key in ("arch", "model_type") if user.get(key) is not None}
        if chosen:
            config = OmegaConf.merge(config, {"model": chosen})
        check_model_type(config.get("model"))
        return Config.build_model_config(config)


def check_model_type(model: Mapping[str, Any] | None) -> None:
    """`model.arch` is registered and `model.model_type` is one of its presets."""
    from lavis.common.registry import registry

    if not isinstance(model, Mapping) or not model.get("arch"):
        raise ValueError("the config's `model:` section needs an `arch:`")
    arch, model_type = model["arch"], model.get("model_type")
    model_cls = registry.get_model_class(arch)
    if model_cls is None:
        raise ValueError(f"model.arch={arch!r} is not registered; known: {registry.list_models()}")
    presets = sorted(getattr(model_cls, "PRETRAINED_MODEL_CONFIG_DICT", None) or {})
    if model_type not in presets:
        raise ValueError(
            f"model.model_type={model_type!r} is not a preset of {arch}; valid: {presets}"
        )


def model_config_reader(arch: str) -> Callable[[Any], Any] | None:
    """The plugin's typed reader of `arch`'s model config (None for another plugin's model)."""
    from lavis.common.registry import registry

    from lavis_syncmask.baselines.build import BASELINE_ARCHS, BaselineConfig
    from lavis_syncmask.models.config import SyncMaskModelConfig
    from lavis_syncmask.models.heads import (
        SyncMaskClassifier,
        SyncMaskComposedRetrieval,
        head_config,
    )
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    if arch in BASELINE_ARCHS:
        return BaselineConfig.from_dict
    model_cls = registry.get_model_class(arch)
    if model_cls is None:
        return None
    if issubclass(model_cls, (SyncMaskClassifier, SyncMaskComposedRetrieval)):
        return head_config
    if issubclass(model_cls, SyncMaskFashion):
        return SyncMaskModelConfig.from_dict
    return None


def check_model_config(model: Mapping[str, Any]) -> None:
    """Every `model.*` key of the plugin's models (`model`: the section as a plain mapping,
    `models/config.model_section`) checked (type, range, unknown keys) before anything is
    built; another plugin's model checks its own config. `model.checkpoint` is the evaluation
    launcher's, moved to `run.checkpoint` before the model is built."""
    reader = model_config_reader(str(model.get("arch")))
    if reader is not None:
        reader({k: v for k, v in model.items() if k not in LAUNCHER_MODEL_KEYS})


def check_queue_fits_batch(model: Mapping[str, Any], settings: RunSettings) -> None:
    """A training step of `syncmask_fashion` (and of LAVIS's ALBEF / BLIP) enqueues the whole
    global batch into the ITC queue, which must hold a whole number of them (else the first
    step fails, after the datasets are built, with a message that names no config key)."""
    queue = model.get("queue_size")
    # Only the models known to enqueue whole batches: another plugin's queue may differ.
    if queue is None or settings.evaluate or model_config_reader(str(model.get("arch"))) is None:
        return
    batch = settings.batch_size_train * settings.world_size
    if int(queue) % batch:
        raise ValueError(
            f"model.queue_size={queue} must be a multiple of the global batch size {batch} "
            f"(run.batch_size_train={settings.batch_size_train} x {settings.world_size} "
            "process(es)): every step enqueues one whole batch"
        )
