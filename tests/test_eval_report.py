"""metrics.json provenance and the LAVIS-style evaluate.txt lines (evaluation/report.py)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from lavis_syncmask.evaluation import write_metrics


def call(out: Path, metrics: dict, **overrides) -> Path:
    kwargs = dict(
        task="retrieval",
        protocol="sample100",
        gallery=None,
        seeds=(0, 1, 2),
        checkpoint="ckpt/model.pth",
        data_files=["data/fashiongen_256_256_validation.h5"],
        config={"run": {"k_test": 128}, "model": {"arch": "syncmask_fashion"}},
    )
    kwargs.update(overrides)
    return write_metrics(out, metrics, **kwargs)


def test_metrics_json_holds_numbers_and_provenance(tmp_path: Path) -> None:
    metrics = {"r_mean": np.float32(81.5), "i2t_r1": torch.tensor(65.25), "per_seed": [{"a": 1}]}
    path = call(tmp_path / "run", metrics)
    assert path == tmp_path / "run" / "metrics.json"
    data = json.loads(path.read_text())
    assert data["metrics"] == {"r_mean": 81.5, "i2t_r1": 65.25, "per_seed": [{"a": 1}]}
    assert data["task"] == "retrieval" and data["protocol"] == "sample100"
    assert data["seeds"] == [0, 1, 2] and data["checkpoint"] == "ckpt/model.pth"
    assert data["data_files"] == ["data/fashiongen_256_256_validation.h5"]
    assert data["config"]["run"]["k_test"] == 128 and data["gallery"] is None
    assert datetime.fromisoformat(data["timestamp"]).tzinfo is not None
    assert data["git_commit"] is None or isinstance(data["git_commit"], str)
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_evaluate_txt_gets_one_json_line_per_call(tmp_path: Path) -> None:
    call(tmp_path, {"r_mean": 50.0})
    call(tmp_path, {"dress_r10": 30.0, "gallery": "val_union"}, task="tgir", protocol=None)
    lines = (tmp_path / "evaluate.txt").read_text().splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert first["r_mean"] == 50.0 and first["task"] == "retrieval"
    assert second["dress_r10"] == 30.0 and second["gallery"] == "val_union"
    assert json.loads((tmp_path / "metrics.json").read_text())["gallery"] == "val_union"


def test_rejects_non_finite_or_inconsistent_metrics(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"metrics\.r1 is nan"):
        call(tmp_path, {"r1": float("nan")})
    with pytest.raises(ValueError, match="gallery='original'"):
        call(tmp_path, {"r10": 1.0, "gallery": "val_union"}, gallery="original")
    with pytest.raises(ValueError, match="JSON cannot hold"):
        call(tmp_path, {"r10": object()})
    assert not (tmp_path / "evaluate.txt").exists()
