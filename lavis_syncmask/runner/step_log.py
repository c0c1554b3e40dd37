"""Per-iteration values of a run (`metrics.jsonl`) and the `run.max_steps` stop.

The loop's `after_step` hook is wrapped by :class:`StepRecorder`. After every iteration it
appends one JSON line to `<run folder>/metrics.jsonl` when `run.log_every_step` is set: the
epoch, iteration, optimizer update, learning rate and what the task measured in that step
(`task.last_step_values()`: loss terms, mask sync precision, feature cosine). Benchmarks and
diagnostics read their curves from this file instead of running loops of their own. It also
stops training after `run.max_steps` optimizer updates (the step schedule's length).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lavis_syncmask.common.distributed import is_main_process
from lavis_syncmask.runner.resume import EpochProgress
from lavis_syncmask.runner.scheduler import UpdateClock

STEP_LOG = "metrics.jsonl"

AfterStep = Callable[[EpochProgress, bool], bool]


class StepRecorder:
    """`after_step` for one epoch: the inner hook first (checkpoints, signals), then the
    step's line, then the `max_steps` check. `reached` tells the runner why the loop stopped."""

    def __init__(
        self,
        inner: AfterStep,
        *,
        task: Any,
        optimizer: Any,
        clock: UpdateClock,
        log_file: Path | None,
    ) -> None:
        self.inner, self.task, self.optimizer, self.clock = inner, task, optimizer, clock
        self.log_file = log_file if is_main_process() else None
        self.reached = False

    def __call__(self, progress: EpochProgress, is_update: bool) -> bool:
        if self.inner(progress, is_update):
            return True
        iteration = progress.iteration - 1
        update = self.clock.update_index(progress.epoch, iteration)
        if self.log_file is not None:
            self._write(progress.epoch, iteration, update)
        limit = self.clock.max_steps
        if limit is not None and is_update and update + 1 >= limit:
            self.reached = True
            return True
        return False

    def _write(self, epoch: int, iteration: int, update: int) -> None:
        values = getattr(self.task, "last_step_values", None)
        measured = dict(values()) if callable(values) else {}
        line = {
            "epoch": epoch,
            "iteration": iteration,
            "update": update,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            **measured,
        }
        with open(self.log_file, "a", encoding="utf-8") as handle:  # type: ignore[arg-type]
            handle.write(json.dumps(line) + "\n")


def restart_step_log(run_dir: Path, epoch: int, iteration: int) -> None:
    """Keep only the lines before (epoch, iteration), where training starts now: a fresh run
    (0, 0) in a reused folder starts an empty file, a resumed one drops the steps it redoes,
    so the file always describes one uninterrupted run."""
    path = Path(run_dir) / STEP_LOG
    if not is_main_process() or not path.is_file():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and _before(json.loads(line), epoch, iteration)
    ]
    path.write_text("".join(f"{line}\n" for line in kept))


def _before(line: dict[str, Any], epoch: int, iteration: int) -> bool:
    return (int(line["epoch"]), int(line["iteration"])) < (epoch, iteration)


def read_step_log(run_dir: Path) -> list[dict[str, Any]]:
    """The lines of a run folder's `metrics.jsonl` (empty when the run logged none)."""
    path = Path(run_dir) / STEP_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
