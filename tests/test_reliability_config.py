"""Reliability, round two (issue 20), model keys and config reading: every `model.*` key typed
and ranged when the config is built, `model.model_type` in `--options` choosing the preset,
LAVIS's optimiser keys ranged, `--options` entries without a value and yamls that are not a
mapping refused. Each error names the key, the value and what is allowed. Configs only: no
model is trained."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lavis_syncmask.cli.launcher import import_modules, load_config
from lavis_syncmask.cli.options import check_queue_fits_batch, parse_options
from lavis_syncmask.models.config import (
    RANGES,
    BackboneConfig,
    ObjectiveConfig,
    SyncMaskModelConfig,
    model_section,
)
from lavis_syncmask.runner.settings import RunSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
PRETRAIN_TINY = REPO_ROOT / "projects" / "syncmask" / "pretrain_tiny.yaml"
RECOGNITION_TINY = REPO_ROOT / "projects" / "syncmask" / "recognition_tiny.yaml"
RECIPES = sorted((REPO_ROOT / "projects" / "syncmask").glob("*.yaml"))


def load(*options: str, cfg_path: Path = PRETRAIN_TINY) -> object:
    """The launcher's config of `cfg_path` with `--options`, as `python -m lavis.train`."""
    import_modules([])
    return load_config(argparse.Namespace(cfg_path=str(cfg_path), options=list(options)))


# ------------------------------------------------ the issue's cases, exactly as it lists them
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("model.momentum=1.5", r"model\.momentum=1\.5 is out of range: must be in \[0, 1\)"),
        ("model.temp=-0.5", r"model\.temp=-0\.5 is out of range: must be in \[0\.001, 0\.5\]"),
        ("model.temp=0", r"model\.temp=0\.0 is out of range: must be in \[0\.001, 0\.5\]"),
        ("model.near_duplicate_sim=-1", r"model\.near_duplicate_sim=-1\.0 .* in \(0, 1\]"),
        ("model.mlm_ratio=0.0", r"model\.mlm_ratio=0\.0 .* in \(0, 1\] .*mlm_weight: 0"),
        ("model.queue_size=-5", r"model\.queue_size=-5 is out of range: must be >= 1"),
        ("model.embed_dim=abc", r"model\.embed_dim must be an int, got 'abc'"),
        ("run.init_lr=-1", r"run\.init_lr=-1\.0 is out of range: must be > 0"),
    ],
)
def test_issue_cases_name_the_key_value_and_range(option: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(option)


# ------------------------------------------------ every other key, and the range edges
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("model.mim_ratio=0", r"model\.mim_ratio=0 .* in \(0, 1\] .*use_mim: false"),
        ("model.sync_ratio=1.5", r"model\.sync_ratio=1\.5 .* in \[0, 1\]"),
        ("model.max_txt_len=0", r"model\.max_txt_len=0 is out of range: must be >= 1"),
        ("model.alpha=1.5", r"model\.alpha=1\.5 is out of range: must be in \[0, 1\]"),
        ("model.itm_weight=-1", r"model\.itm_weight=-1\.0 is out of range: must be >= 0"),
        ("model.k_test=0", r"model\.k_test=0 is out of range"),
        ("model.vit_drop_path_rate=1", r"model\.vit_drop_path_rate=1\.0 .* \[0, 1\)"),
        ("model.temp=nan", r"model\.temp=nan is out of range"),
        ("model.queue_size=64.0", r"model\.queue_size must be an int, got 64\.0"),
        ("model.use_mim=maybe", r"model\.use_mim must be true or false, got 'maybe'"),
        ("model.load_finetuned=1", r"model\.load_finetuned must be true or false, got 1"),
        ("model.tokenizer=3", r"model\.tokenizer must be a string, got 3"),
        ("model.vision_heads=5", r"model\.vision_width=96 must be a multiple of .*heads=5"),
        ("model.image_size=100", r"model\.image_size=100 must be a multiple of .*patch_size"),
        ("model.sync_layers=[0,2]", r"model\.sync_layers=\[0, 2\] .* in \[0, 2\)"),
        ("model.sync_layers=[1,1]", r"model\.sync_layers=\[1, 1\] .* distinct"),
        ("run.min_lr=-1e-5", r"run\.min_lr=-1e-05 is out of range: must be >= 0"),
        ("run.weight_decay=-0.1", r"run\.weight_decay=-0\.1 is out of range: must be >= 0"),
        ("run.warmup_lr=-0.5", r"run\.warmup_lr=-0\.5 .* >= 0 \(or -1: start the warm-up"),
    ],
)
def test_every_model_key_is_typed_and_ranged(option: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(option)


def test_range_edges_are_accepted_and_values_are_typed() -> None:
    edges = ("model.momentum=0", "model.temp=0.5", "model.sync_ratio=0.0", "run.warmup_lr=-1")
    cfg = load(*edges, "model.near_duplicate_sim=1", "model.mlm_ratio=1.0", "run.min_lr=0")
    config = SyncMaskModelConfig.from_dict(cfg.model_cfg)
    assert config.objectives.temp == 0.5 and config.objectives.momentum == 0.0
    assert config.objectives.near_duplicate_sim == 1.0 and config.masking["sync_ratio"] == 0.0
    config = SyncMaskModelConfig.from_dict(load("model.temp=1e-3").model_cfg)
    assert config.objectives.temp == pytest.approx(1e-3)  # YAML 1.1's "1e-3" string: a float
    with pytest.raises(ValueError, match=r"model\.momentum=1\.0 .* \[0, 1\)"):
        load("model.momentum=1")  # just outside: the teacher would never move


def test_every_numeric_model_key_has_a_range() -> None:
    """A new int / float field without a range would be checked for its type only."""
    for cls in (BackboneConfig, ObjectiveConfig):
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float"):
                assert f.name in RANGES, f"{cls.__name__}.{f.name} has no range in RANGES"


def test_the_heads_and_the_baselines_share_the_checks() -> None:
    from lavis_syncmask.baselines.build import BaselineConfig

    with pytest.raises(ValueError, match=r"model\.temp=0\.0 is out of range"):
        load("model.temp=0", cfg_path=RECOGNITION_TINY)
    with pytest.raises(ValueError, match=r"model\.num_classes must be an int, got 'abc'"):
        load("model.num_classes=abc", cfg_path=RECOGNITION_TINY)
    albef = {"arch": "albef_pretrain", "size_preset": "tiny"}
    with pytest.raises(ValueError, match=r"model\.momentum=1\.5 is out of range"):
        BaselineConfig.from_dict({**albef, "momentum": 1.5})
    with pytest.raises(ValueError, match=r"model\.queue_size must be an int, got 'abc'"):
        BaselineConfig.from_dict({**albef, "queue_size": "abc"})
    assert BaselineConfig.from_dict({**albef, "temp": "7e-2"}).temp == pytest.approx(0.07)


def test_queue_must_hold_whole_global_batches() -> None:
    cfg = load("model.queue_size=100", "run.batch_size_train=32")
    with pytest.raises(ValueError, match=r"model\.queue_size=100 .* global batch size 32"):
        check_queue_fits_batch(model_section(cfg), RunSettings.of(cfg))
    cfg = load("model.queue_size=96", "run.batch_size_train=32", "run.world_size=2")
    with pytest.raises(ValueError, match=r"global batch size 64 \(.*=32 x 2 process"):
        check_queue_fits_batch(model_section(cfg), RunSettings.of(cfg))
    RunSettings.update(cfg, evaluate=True)  # evaluation enqueues nothing
    check_queue_fits_batch(model_section(cfg), RunSettings.of(cfg))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_queue_holds_whole_batches(recipe: Path) -> None:
    cfg = load(cfg_path=recipe)
    check_queue_fits_batch(model_section(cfg), RunSettings.of(cfg))


# ------------------------------------------------ model_type chooses the preset
def test_model_type_option_selects_that_preset() -> None:
    cfg = load("model.model_type=base")
    assert cfg.model_cfg.model_type == "base"
    # Keys the recipe leaves to the preset come from base; the recipe's own (queue_size: 32)
    # still win over the preset, as in LAVIS.
    assert cfg.model_cfg.vision_width == 768 and cfg.model_cfg.vision_depth == 12  # not tiny's
    assert cfg.model_cfg.queue_size == 32
    assert str(cfg.model_cfg.pretrained).endswith("ALBEF.pth")
    assert load().model_cfg.vision_width == 96  # the recipe's own preset, unchanged


def test_model_type_that_is_no_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"model_type='huge' is not a preset .*\['base', 'tiny'\]"):
        load("model.model_type=huge")
    with pytest.raises(
        ValueError, match=r"model_type='huge' is not a preset of syncmask_fashion_cls"
    ):
        load("model.model_type=huge", cfg_path=RECOGNITION_TINY)


def test_base_preset_offline_names_the_weights_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load("model.model_type=base")
    with pytest.raises(FileNotFoundError, match=r"`model\.pretrained` = https://\S+ALBEF\.pth"):
        SyncMaskFashion.from_config(cfg.model_cfg)


# ------------------------------------------------ --options and the yaml itself
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["model.temp"], r"--options 'model\.temp' has no value: write model\.temp=VALUE"),
        (["run.seed=1", "model.temp"], r"'model\.temp' has no value"),
        (["model.temp", "0.2", "model.momentum"], r"'model\.momentum' has no value"),
        (["model.temp="], r"'model\.temp=' has no value: write model\.temp=null"),
        (["model.temp", "0.2", "run.seed=3"], r"'run\.seed=3': write every entry as key=value"),
        (["=3"], r"'' is not a dotted config key"),
    ],
)
def test_options_without_a_value_are_errors(options: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(*options)


def test_both_option_forms_still_read() -> None:
    assert parse_options(["model.temp", "0.2", "run.seed", "3"]) == ["model.temp=0.2", "run.seed=3"]
    assert load("model.temp", "0.2").model_cfg.temp == pytest.approx(0.2)
    assert load("model.pretrained=a=b.pth").model_cfg.pretrained == "a=b.pth"
    # The evaluation launcher's key, moved to run.checkpoint before the model is built.
    assert load("model.checkpoint=c.pth").model_cfg.checkpoint == "c.pth"


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- run\n- model\n", "a list"), ("5\n", r"an int \(5\)"), ("just text\n", "a str")],
)
def test_yaml_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"top level of {path} must be a mapping .*got {kind}"):
        load(cfg_path=path)


def test_each_section_must_be_a_mapping(tmp_path: Path) -> None:
    raw = OmegaConf.load(PRETRAIN_TINY)
    raw.model = 5
    path = tmp_path / "run.yaml"
    OmegaConf.save(raw, path)
    with pytest.raises(ValueError, match=rf"`model:` in {path} must be a mapping, got an int"):
        load(cfg_path=path)
