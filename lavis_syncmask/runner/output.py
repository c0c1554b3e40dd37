"""The run folder: where a run writes (`<run.output_dir>/<job id>/`, registered with LAVIS),
its resolved `config.yaml`, and `log.txt`, one JSON object a line per logged split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lavis.common.registry import registry

from lavis_syncmask.common.checkpoint import remove_stale_partials
from lavis_syncmask.common.disk import append_line, write_text_atomically
from lavis_syncmask.common.distributed import is_main_process
from lavis_syncmask.common.paths import job_folder

CONFIG_FILE = "config.yaml"
LOG_FILE = "log.txt"


def jsonable(value: Any) -> Any:
    """`json.dumps` fallback: tensors and NumPy values as numbers / lists, the rest as text."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.tolist()
    return str(value)


def prepare_run_folder(output_dir: str, job_id: str, config_yaml: str) -> tuple[Path, Path]:
    """Create `<output_dir>/<job_id>/result`, register both with LAVIS's registry (a later
    runner's paths win: the registry refuses a second registration), and on the main process
    remove partial files of dead writers and write `config.yaml`. Returns (run, result)."""
    run_dir = job_folder(output_dir, job_id)
    result_dir = run_dir / "result"
    result_dir.mkdir(parents=True, exist_ok=True)
    for name, path in (("output_dir", run_dir), ("result_dir", result_dir)):
        registry.mapping["paths"].pop(name, None)
        registry.register_path(name, str(path))
    if is_main_process():
        remove_stale_partials(run_dir)
        write_text_atomically(run_dir / CONFIG_FILE, config_yaml)
    return run_dir, result_dir


def append_log(run_dir: Path, stats: Any, split_name: str) -> None:
    """One line `{"<split>_<key>": value, ...}` in `log.txt` (main process, dict stats only)."""
    if not is_main_process() or not isinstance(stats, dict):
        return
    line = json.dumps({f"{split_name}_{k}": v for k, v in stats.items()}, default=jsonable)
    append_line(run_dir / LOG_FILE, line)  # a full disk: a clear error, no half line
