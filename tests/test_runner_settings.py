"""`RunSettings` and the config checks: types named by key, unknown keys with the valid ones
and a "did you mean", LAVIS's own keys accepted, every shipped recipe readable."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import toy_plugin
from omegaconf import OmegaConf

from lavis_syncmask.cli.launcher import import_modules, load_config
from lavis_syncmask.runner.settings import RunSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
# Every recipe once (projects/syncmask links to the packaged ones).
RECIPES = sorted(
    {p.resolve() for p in (REPO_ROOT / "projects" / "syncmask").glob("*.yaml")}
    | set((REPO_ROOT / "lavis_syncmask" / "configs" / "recipes").glob("*.yaml"))
)


def read(**run: object) -> RunSettings:
    return RunSettings.from_run_cfg(OmegaConf.create(run))


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"seed": "abc"}, "run.seed must be an int, got 'abc'"),
        ({"batch_size_train": 32.7}, "run.batch_size_train must be an int, got 32.7"),
        ({"evaluate": "yes"}, "run.evaluate must be true or false"),
        ({"init_lr": "fast"}, "run.init_lr must be a number, got 'fast'"),
        ({"train_splits": "train"}, "run.train_splits must be a list"),
        ({"amp": "bf17"}, r"run.amp must be one of \['bf16', 'fp16', False\]"),
        ({"batch_sampler": "hardest"}, "run.batch_sampler must be one of"),
        ({"max_epochs": 1}, r"run.max_epochs \(did you mean 'max_epoch'\?\)"),
        ({"max_epoch": 0}, r"run.max_epoch=0 trains nothing"),
        ({"accum_grad_iters": 0}, "run.accum_grad_iters must be >= 1"),
        ({"max_bad_steps": 0}, "run.max_bad_steps must be >= 1"),
    ],
)
def test_bad_run_values_name_their_key(run: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read(**run)


def test_defaults_yaml_floats_and_the_old_amp_switch() -> None:
    settings = read(init_lr="1e-3", amp=True, train_splits=["train"], seeds=[3, 4])
    assert settings.init_lr == pytest.approx(1e-3) and settings.amp == "fp16"
    assert settings.train_splits == ("train",) and settings.eval_seeds == (3, 4)
    assert read(amp="bf16").amp == "bf16" and read().amp is False
    assert read(repeats=2).eval_seeds == (0, 1)
    assert read().save_every_iters == 0 and read().keep_last == 0 and read().max_bad_steps == 5
    assert read(max_epoch=0, evaluate=True).max_epoch == 0  # evaluation only: fine


def test_lavis_keys_stay_accepted() -> None:
    lavis_keys = {"beta2": 0.98, "lr_decay_rate": 0.9, "use_dist_eval_sampler": False}
    lavis_keys |= {"num_beams": 3, "max_len": 30, "report_metric": True, "dist_url": "env://"}
    settings = read(**lavis_keys)
    assert settings.beta2 == 0.98 and settings.num_beams == 3


def _load(tmp_path: Path, edit: dict | None = None, *options: str) -> object:
    import_modules(["toy_plugin"])
    raw = OmegaConf.load(toy_plugin.RUN_CONFIG)
    if edit:
        raw = OmegaConf.merge(raw, edit)
    path = tmp_path / "run.yaml"
    OmegaConf.save(raw, path)
    return load_config(argparse.Namespace(cfg_path=str(path), options=list(options)))


def test_launcher_refuses_unknown_sections_and_keys(tmp_path: Path) -> None:
    assert _load(tmp_path).run_cfg.task == "syncmask_toy_task"
    with pytest.raises(ValueError, match=r"runn \(did you mean 'run'\?\)"):
        _load(tmp_path, {"runn": {"max_epoch": 1}})
    with pytest.raises(ValueError, match=r"runn \(did you mean 'run'\?\)"):
        _load(tmp_path, None, "runn.max_epoch=1")  # a section added by --options
    with pytest.raises(ValueError, match=r"run.max_epochs \(did you mean 'max_epoch'\?\)"):
        _load(tmp_path, None, "run.max_epochs=1")
    with pytest.raises(ValueError, match="run.seed must be an int, got 'abc'"):
        _load(tmp_path, None, "run.seed=abc")
    with pytest.raises(ValueError, match=r"datasets.syncmask_toy_dat \(did you mean"):
        _load(tmp_path, {"datasets": {"syncmask_toy_dat": {}}})


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_passes_the_launcher_checks(recipe: Path) -> None:
    import_modules([])  # LAVIS merges the model yaml's `preprocess:` block: still accepted
    cfg = load_config(argparse.Namespace(cfg_path=str(recipe), options=[]))
    assert "preprocess" in cfg.config and cfg.run_cfg.task.startswith("syncmask_")


def test_sampler_knobs_are_type_checked_against_the_sampler() -> None:
    from lavis_syncmask.sampling.batch_sampler import SemiHardBatchSampler

    def check(**knobs: object) -> None:
        read(batch_sampler="semi_hard", sampler=knobs).sampler_settings.checked_for(
            SemiHardBatchSampler
        )

    check(group_size=4, sim_upper=0.85, anchor_scope="any")
    with pytest.raises(ValueError, match="run.sampler.group_size must be an int, got 4.5"):
        check(group_size=4.5)
    with pytest.raises(ValueError, match=r"run.sampler.anchor_scope must be one of \['group'"):
        check(anchor_scope="all")
    with pytest.raises(ValueError, match=r"unknown run.sampler keys \['size'\]"):
        check(size=4)


def test_device_resolution_and_model_placement(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from lavis_syncmask.runner import devices
    from lavis_syncmask.runner.devices import place_model, resolve_device

    assert resolve_device("cpu", distributed=True, local_gpu=3) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="run.device=cuda but CUDA is not available"):
        resolve_device("cuda", distributed=False, local_gpu=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices, "enable_tf32", lambda: None)
    assert resolve_device("cuda", distributed=True, local_gpu=3) == torch.device("cuda", 3)
    assert resolve_device("cuda:1", distributed=True, local_gpu=3) == torch.device("cuda", 1)
    layer = torch.nn.Linear(2, 2)
    assert place_model(layer, torch.device("cpu"), distributed=False, find_unused=False) is layer
