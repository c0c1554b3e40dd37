"""The dev-sweep choice (`python -m lavis_syncmask.bench --choose-from`): each arm's best
setting by full-protocol mean recall, from the runs of one benchmark folder per setting."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lavis_syncmask.cli.bench import main


def fake_run(folder: Path, arm: str, seed: int, lr: str, recall: float) -> None:
    run = folder / "runs" / f"{arm}_s{seed}"
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps({"arm": arm, "seed": seed,
                                               "overrides": [f"run.init_lr={lr}"]}))  # fmt: skip
    metrics = {"full_itm_itc": {"r_mean": recall}}
    (run / "result.json").write_text(json.dumps({"arm": arm, "seed": seed, "metrics": metrics}))


def test_each_arm_gets_its_own_best_setting(tmp_path: Path, capsys) -> None:
    low, high = tmp_path / "lr1e-3", tmp_path / "lr3e-3"
    fake_run(low, "a_syncmask", 0, "1e-3", 30.0)
    fake_run(high, "a_syncmask", 0, "3e-3", 40.0)
    fake_run(low, "e_albef", 0, "1e-3", 20.0)
    fake_run(high, "e_albef", 0, "3e-3", math.nan)  # no figure: never chosen
    fake_run(low, "f_blip", 0, "1e-3", 25.0)
    fake_run(low, "f_blip", 1, "1e-3", 35.0)  # two seeds: their mean, 30.0
    fake_run(high, "f_blip", 0, "3e-3", 29.0)
    out = tmp_path / "choice"
    assert main(["--choose-from", str(low), str(high), "--out", str(out)]) == 0
    record = json.loads((out / "choice.json").read_text())
    best = {arm: entry["best"] for arm, entry in record["choice"].items()}
    assert best == {"a_syncmask": "run.init_lr=3e-3", "e_albef": "run.init_lr=1e-3",
                    "f_blip": "run.init_lr=1e-3"}  # fmt: skip
    assert record["choice"]["f_blip"]["settings"]["run.init_lr=1e-3"] == pytest.approx(30.0)
    assert record["choice"]["f_blip"]["seeds"]["run.init_lr=1e-3"] == 2
    table = capsys.readouterr().out
    assert "| (a) SyncMask as shipped | 30.0 | **40.0** |" in table
    assert table.strip() == (out / "choice.md").read_text().strip()


def test_choice_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        main(["--choose-from", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="no finished runs"):
        main(["--choose-from", str(tmp_path), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):  # a benchmark needs its data
        main(["--out", str(tmp_path / "o")])
