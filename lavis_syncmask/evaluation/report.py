"""Evaluation output with provenance: `metrics.json` (the numbers plus what produced them: task,
protocol, gallery convention, seeds, checkpoint, data files, resolved config, time, git commit)
and one JSON line appended to `evaluate.txt`, the file LAVIS's tasks append their results to.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lavis_syncmask.common.disk import reporting_full_disk, write_error


def _git_commit() -> str | None:
    """Short commit of the checkout this module lives in, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON types from numpy / torch / Path values; strict JSON has no NaN, so a
    non-finite number is an error naming where it sits."""
    if torch.is_tensor(value) or isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}; metrics.json must hold finite numbers")
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where} has type {type(value).__name__}, which JSON cannot hold")


def write_metrics(
    output_dir: str | os.PathLike,
    metrics: dict,
    *,
    task: str,
    protocol: str | None,
    gallery: str | None,
    seeds: Iterable[int] | int | None,
    checkpoint: str | None,
    data_files: list[str],
    config: dict | None,
) -> Path:
    """Write `<output_dir>/metrics.json` (replacing an earlier one, atomically) and append the
    metrics as one JSON line to `<output_dir>/evaluate.txt` (under a file lock).

    `metrics.json` holds `{"metrics", "task", "protocol", "gallery", "seeds", "checkpoint",
    "data_files", "config", "timestamp" (UTC ISO-8601), "git_commit"}`; the `evaluate.txt`
    line is the metrics plus `task`, `protocol`, `gallery` and `timestamp`, so lines from
    several evaluations stay distinguishable. Returns the path of `metrics.json`.

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> write_metrics(out, {"r_mean": 80.1}, task="retrieval", protocol="sample100",
        ...               gallery=None, seeds=[0, 1], checkpoint=None, data_files=[], config=None).name
        'metrics.json'
    """
    metrics = _jsonable(metrics, "metrics")
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics must be a dict, got {type(metrics).__name__}")
    if gallery is None:
        gallery = metrics.get("gallery")  # e.g. a tgir_report result names its own gallery
    elif metrics.get("gallery", gallery) != gallery:
        raise ValueError(
            f"metrics say gallery={metrics['gallery']!r} but write_metrics got gallery={gallery!r}"
        )
    seeds = [int(seeds)] if isinstance(seeds, (int, np.integer)) else seeds
    provenance = {
        "task": task,
        "protocol": protocol,
        "gallery": gallery,
        "seeds": None if seeds is None else [int(s) for s in seeds],
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "data_files": [str(f) for f in data_files],
        "config": _jsonable(config, "config"),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
    }
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    _replace_atomically(
        path, json.dumps({"metrics": metrics, **provenance}, indent=2, allow_nan=False) + "\n"
    )
    line = {
        **metrics,
        **{key: provenance[key] for key in ("task", "protocol", "gallery", "timestamp")},
    }
    _append_locked(out_dir / "evaluate.txt", json.dumps(line, allow_nan=False) + "\n")
    return path


def _replace_atomically(path: Path, text: str) -> None:
    """Write to a temporary file unique to this writer, then rename over `path`: a reader
    sees the old or the new file whole, and concurrent writers never share a temporary."""
    handle, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as error:
        clear = write_error(path, error)  # a full disk names the file (common/disk.py)
        Path(tmp).unlink(missing_ok=True)
        if clear is not None:
            raise clear from error
        raise


def _append_locked(path: Path, text: str) -> None:
    """Append under an exclusive lock, so lines of concurrent evaluations never interleave."""
    with reporting_full_disk(path), open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(text)
            f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
