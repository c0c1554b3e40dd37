"""Each section of a run config is read in one place (ARCHITECTURE.md, "Where each config key
is read"): `run:` by `runner/settings.py`, `model:` by `models/config.py`, `datasets:` by the
builders in `data/builders.py`. Every other module asks those (`RunSettings.of(cfg)`,
`models/config.model_section`, a dataset object) instead of reading the raw config, so a key's
type, default and check live once. The scan parses every package module with `ast`.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path
from typing import Any

import pytest
import toy_plugin

from lavis_syncmask.cli.launcher import make_runner, prepare
from lavis_syncmask.runner.settings import RunSettings

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lavis_syncmask"
SECTIONS = ("run", "model", "datasets")
#: LAVIS `Config`'s properties for the three sections.
PROPERTIES = {"run_cfg": "run", "model_cfg": "model", "datasets_cfg": "datasets"}
#: The one reader of each section (paths relative to the repository).
READERS = {
    "run": "lavis_syncmask/runner/settings.py",
    "model": "lavis_syncmask/models/config.py",
    "datasets": "lavis_syncmask/data/builders.py",
}
#: Reads the host or the tool forces elsewhere, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("lavis_syncmask/cli/options.py", "model"): (
        "LAVIS's `Config` calls `build_model_config(config)` with the merged yaml before any "
        "settings exist; it picks the preset from `model.arch` / `model.model_type`"
    ),
}
#: A name that holds a config: `cfg`, `config`, `run_cfg`, `raw` (a yaml read as is), ...
_CONFIG_NAME = re.compile(r"cfg|conf|^raw$", re.IGNORECASE)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _section(node: ast.AST) -> str | None:
    """The section `node` reads or writes raw, if any: `x.run_cfg`, `cfg.model`,
    `config.get("datasets")`, `cfg["run"]`."""
    if isinstance(node, ast.Attribute):
        if node.attr in PROPERTIES:
            return PROPERTIES[node.attr]
        if node.attr in SECTIONS and _CONFIG_NAME.search(_name(node.value)):
            return node.attr
    key = None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        if node.func.attr in ("get", "pop") and _CONFIG_NAME.search(_name(node.func.value)):
            key = node.args[0]
    elif isinstance(node, ast.Subscript) and _CONFIG_NAME.search(_name(node.value)):
        key = node.slice
    if isinstance(key, ast.Constant) and key.value in SECTIONS:
        return str(key.value)
    return None


def raw_reads(source: str) -> list[tuple[int, str]]:
    """`(line, section)` of every raw section read in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        section = _section(node)
        if section is not None:
            found.append((getattr(node, "lineno", 0), section))
    return sorted(found)


def test_the_scan_finds_each_form_of_raw_read() -> None:
    source = (
        "a = cfg.run_cfg.seed\n"
        "b = self.cfg.model_cfg.get('arch')\n"
        "c = cfg.config.datasets\n"
        "d = config.get('model', None)\n"
        "e = raw['run']\n"
        "f = self.model\n"  # a model object, not a config
        "g = checkpoint.get('model')\n"  # a checkpoint's state dict
    )
    assert raw_reads(source) == [
        (1, "run"),
        (2, "model"),
        (3, "datasets"),
        (4, "model"),
        (5, "run"),
    ]


def _package_reads() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        shown = path.relative_to(ROOT).as_posix()
        for line, section in raw_reads(path.read_text(encoding="utf-8")):
            if READERS[section] != shown and (shown, section) not in ALLOWED:
                found.append(
                    f"{shown}:{line} reads `{section}:` raw (its reader: {READERS[section]})"
                )
    return found


def test_each_section_is_read_only_by_its_reader() -> None:
    found = _package_reads()
    assert not found, "raw config reads outside their reader:\n" + "\n".join(found)


@pytest.mark.parametrize("entry", sorted(ALLOWED))
def test_every_allowed_read_still_exists(entry: tuple[str, str]) -> None:
    path, section = entry
    reads = raw_reads((ROOT / path).read_text(encoding="utf-8"))
    assert any(s == section for _, s in reads), f"{path} no longer reads `{section}:`: drop it"


def test_the_run_section_is_read_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher reads `run:` once; the process group, the device and the runner share
    those settings (they were read again at six places)."""
    reads: list[Any] = []
    read = RunSettings.from_run_cfg.__func__  # type: ignore[attr-defined]

    def counted(cls: type[RunSettings], run_cfg: Any) -> RunSettings:
        reads.append(run_cfg)
        return read(cls, run_cfg)

    monkeypatch.setattr(RunSettings, "from_run_cfg", classmethod(counted))
    args = argparse.Namespace(
        cfg_path=str(toy_plugin.RUN_CONFIG),
        options=[f"run.output_dir={tmp_path}", "run.device=cpu"],
        job_id="once",
        imports=["toy_plugin"],
    )
    session = prepare(args)
    runner = make_runner(session)
    assert len(reads) == 1
    assert runner.settings is session.settings is RunSettings.of(session.cfg)
    assert session.cfg.run_cfg.world_size == session.settings.world_size == 1  # LAVIS's view


def test_update_writes_the_run_section_for_lavis() -> None:
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    cfg = SimpleNamespace(run_cfg=OmegaConf.create({"task": "t", "test_splits": ["val"]}))
    RunSettings.read(cfg)
    updated = RunSettings.update(cfg, evaluate=True, valid_splits=["val"])
    assert RunSettings.of(cfg) is updated and updated.valid_splits == ("val",)
    assert cfg.run_cfg.evaluate is True and list(cfg.run_cfg.valid_splits) == ["val"]
    with pytest.raises(ValueError, match=r"run\.seed must be an int"):
        RunSettings.update(cfg, seed="abc")
    with pytest.raises(ValueError, match="run"):
        RunSettings.update(cfg, sede=1)
