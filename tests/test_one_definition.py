"""Each small name is defined once (issue 21, item 4): `is_main_process`, the AMP modes, and the
masking strategies, which the viz, the demo and its report iterate over."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

import lavis_syncmask
from lavis_syncmask.cli import demo_report
from lavis_syncmask.common import distributed, precision
from lavis_syncmask.masking import strategies
from lavis_syncmask.masking.config import MaskingConfig
from lavis_syncmask.runner.settings import RunSettings
from lavis_syncmask.tasks import common as task_common

PACKAGE = Path(lavis_syncmask.__file__).resolve().parent
STRATEGY_USERS = ("cli/viz.py", "cli/demo.py", "cli/demo_report.py")


def test_is_main_process_is_the_one_in_common_distributed() -> None:
    assert task_common.is_main_process is distributed.is_main_process


def test_run_amp_takes_the_modes_common_precision_defines() -> None:
    hint = typing.get_type_hints(RunSettings)["amp"]
    assert hint == precision.AmpSetting
    assert typing.get_args(precision.AmpSetting) == (*typing.get_args(precision.AmpMode), False)
    assert set(precision.AMP_DTYPES) == set(typing.get_args(precision.AmpMode))


def test_masking_config_checks_the_strategy_against_the_registry() -> None:
    assert typing.get_type_hints(MaskingConfig)["strategy"] == strategies.MaskStrategy
    assert MaskingConfig().strategy == strategies.STRATEGIES[0]
    with pytest.raises(ValueError, match="strategy"):
        MaskingConfig(strategy="nonsense")  # type: ignore[arg-type]


@pytest.mark.parametrize("module", STRATEGY_USERS)
def test_no_strategy_name_is_written_out_in_the_cli(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    names = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in strategies.STRATEGIES
    ]
    assert not names, f"{module} names strategies {names}: iterate over masking.strategies"


def test_demo_report_shows_every_registered_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_report, "STRATEGIES", ("syncmask", "random", "third"))
    masking = {
        name: {key: value for key, _ in demo_report.SYNC_KEYS}
        for name, value in (("syncmask", 0.6), ("random", 0.4), ("third", 0.2))
    }
    text = demo_report.summarize({"masking": masking})
    header = next(line for line in text.splitlines() if "statistic" in line)
    assert header.split() == ["statistic", "syncmask", "random", "third"]
    key = demo_report.SYNC_KEYS[0][0]
    row = next(line for line in text.splitlines() if line.split()[:1] == [key])
    assert row.split()[1:] == ["0.600", "0.400", "0.200"]
