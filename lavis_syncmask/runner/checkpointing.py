"""When `runner_syncmask` writes a checkpoint inside an epoch, and when it stops early.

After every training iteration the loop calls a :class:`StepHook`, which
- stops the run with a checkpoint and :class:`NonFiniteLossError` after `run.max_bad_steps`
  bad steps in a row (the loop skipped their updates and undid their buffer writes, so the
  checkpoint holds the state after the last good step; the message says so after checking);
- at optimizer-update boundaries only (so no accumulated gradient is lost), writes a mid-epoch
  checkpoint every `run.save_every_iters` iterations, and writes one and stops the epoch when
  SIGTERM or SIGINT arrived on any rank.
Writing is the runner's job (`save(progress) -> path`); this module decides, and puts an
interrupted epoch back (:func:`resume_epoch`, :func:`sampler_similarity_for_epoch`).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lavis_syncmask.common.checkpoint import load_checkpoint
from lavis_syncmask.common.distributed import get_rank
from lavis_syncmask.runner.loaders import base_loader, refresh_sampler_similarity, skip_batches
from lavis_syncmask.runner.resume import (
    EpochProgress,
    any_rank,
    batch_identity,
    capture_rng,
    gather_ranks,
    identity_changes,
    load_task_state,
    task_state,
)
from lavis_syncmask.runner.settings import RunSettings
from lavis_syncmask.runner.signals import NonFiniteLossError, StopRequests, TrainingStopped
from lavis_syncmask.runner.step_guard import non_finite_entries

SaveProgress = Callable[[EpochProgress], "Path | None"]

logger = logging.getLogger(__name__)


class StepHook:
    """The loop's `after_step` for one epoch of `iters` iterations, starting at `start`."""

    def __init__(
        self,
        settings: RunSettings,
        stop: StopRequests,
        save: SaveProgress,
        iters: int,
        start: int = 0,
    ) -> None:
        self.settings, self.stop, self.save, self.iters = settings, stop, save, iters
        self.last_saved = start
        self.checkpoint: Path | None = None

    def __call__(self, progress: EpochProgress, is_update: bool) -> bool:
        if progress.in_a_row >= self.settings.max_bad_steps:
            path = self.save(progress)
            raise NonFiniteLossError(
                f"{progress.in_a_row} bad steps in a row (a non-finite loss or non-finite "
                f"gradients; run.max_bad_steps={self.settings.max_bad_steps}), the last at "
                f"epoch {progress.epoch} iteration {progress.iteration - 1}: the run stopped. "
                f"{what_was_saved(path, progress)} Lower run.init_lr, set run.max_grad_norm, "
                "or look for bad rows in the data.",
                exit_code=1,
                checkpoint=None if path is None else str(path),
            )
        if not is_update:
            return False
        stopping = any_rank(self.stop.signum is not None)
        every = self.settings.save_every_iters
        due = every > 0 and progress.iteration - self.last_saved >= every
        # The epoch's own checkpoint follows its last iteration: no mid-epoch one there.
        if stopping or (due and progress.iteration < self.iters):
            self.checkpoint = self.save(progress)
            self.last_saved = progress.iteration
        return stopping


def what_was_saved(path: Path | None, progress: EpochProgress) -> str:
    """What the `max_bad_steps` checkpoint holds, checked in the file itself (main process)."""
    last = progress.iteration - progress.in_a_row - 1
    when = f"after iteration {last}" if last >= 0 else "at the start of the epoch"
    if path is None:  # another rank: rank 0 wrote the file and checks it
        return "Rank 0 wrote the checkpoint and its message says what it holds."
    saved = load_checkpoint(path, "the max_bad_steps checkpoint")
    bad = non_finite_entries(saved["model"]) + [
        f"optimizer state {pid}.{key}"
        for pid, entry in saved["optimizer"]["state"].items()
        for key in non_finite_entries(entry)
    ]
    if bad:  # non-finite before the last good step already (e.g. loaded so)
        return f"The checkpoint {path} holds the state {when}, yet non-finite in {bad[:5]}."
    return (
        f"Their updates were skipped and their writes to queues and momentum encoders undone, "
        f"so the checkpoint {path} holds the state {when}: every weight, buffer and optimizer "
        "value in it is finite."
    )


def stopped_by_signal(stop: StopRequests, checkpoint: Path | str | None) -> TrainingStopped:
    """The exception that ends a run after a stop signal and its checkpoint."""
    signum = stop.signum if stop.signum is not None else int(signal.SIGTERM)  # another rank's
    name = signal.Signals(signum).name
    return TrainingStopped(
        f"stopped by {name} after writing {checkpoint}; resume with "
        f"--options run.resume_ckpt_path={checkpoint}",
        exit_code=128 + signum,
        checkpoint=None if checkpoint is None else str(checkpoint),
    )


def run_identity(settings: RunSettings, train_loader: Any) -> dict[str, Any]:
    """What the epoch order of a run with `settings` over `train_loader` depends on."""
    dataset = base_loader(train_loader).dataset
    return batch_identity(settings.batch_size_train, settings.seed, dataset)


def mid_epoch_resume(
    checkpoint: dict[str, Any], settings: RunSettings, source: str
) -> dict[str, Any] | None:
    """The `resume` state a run continues a mid-epoch checkpoint's epoch from, or None when
    `run.resume_from_epoch_start` asks to restart that epoch at its first batch."""
    if not settings.resume_from_epoch_start:
        return checkpoint["resume"]
    done = checkpoint["resume"]["ranks"][0]["iteration"]
    logger.warning(
        "run.resume_from_epoch_start: epoch %d restarts at its first batch from the weights "
        "of %s, so its first %d batches are trained on twice",
        int(checkpoint["epoch"]), source, done,
    )  # fmt: skip
    return None


def check_resumable(resume: dict[str, Any], identity: dict[str, Any], source: str) -> None:
    """Refuse to skip into an epoch whose batches are not the ones the checkpoint saw: another
    batch size, world size, seed or training set (runner/resume.batch_identity)."""
    first = resume["ranks"][0]
    where = f"epoch {first['epoch']} iteration {first['iteration']}"
    saved = resume.get("run")
    changes = [] if saved is None else identity_changes(saved, identity)
    if saved is None:  # written before these checks: only the process count can be checked
        logger.warning("%s records no batch size or data fingerprint: not checked", source)
        if len(resume["ranks"]) != identity["world_size"]:
            changes = [f"world_size={len(resume['ranks'])}, this run has {identity['world_size']}"]
    if changes:
        raise ValueError(
            f"run.resume_ckpt_path: checkpoint {source} was written with "
            f"{'; with '.join(changes)}. Resuming at {where} would skip batches of another "
            "epoch order, and rows never trained on. Resume with the same settings and data, "
            "or set run.resume_from_epoch_start=true to restart that epoch at its first batch"
        )


def resume_epoch(
    resume: dict[str, Any], task: Any, loader: Any, identity: dict[str, Any], source: str
) -> EpochProgress:
    """This rank's progress in a mid-epoch checkpoint's `resume` state (checked against this
    run's `identity`), with the task's running means restored and the loader set to skip the
    batches already trained on."""
    check_resumable(resume, identity, source)
    progress = EpochProgress.from_state(dict(resume["ranks"][get_rank()]))
    load_task_state(task, progress.task)
    skip_batches(loader, progress.iteration)
    logger.info("epoch %d resumes at iteration %d", progress.epoch, progress.iteration)
    return progress


def mid_epoch_state(
    progress: EpochProgress,
    task: Any,
    sampler_embeddings: torch.Tensor | None,
    identity: dict[str, Any],
) -> dict[str, Any]:
    """The `resume` entry of a mid-epoch checkpoint: every rank's progress with its RNG
    states and task sums (a collective: every rank calls it), the sampler embeddings, and
    what the epoch's batches depend on (`run`: runner/resume.batch_identity)."""
    progress.rng, progress.task = capture_rng(), task_state(task)
    ranks = gather_ranks(progress.state())
    return {"ranks": ranks, "sampler_embeddings": sampler_embeddings, "run": identity}


def sampler_similarity_for_epoch(
    sampler: Any,
    model: Any,
    epoch: int,
    texts: list[str],
    resume: dict[str, Any] | None,
    current: torch.Tensor | None,
) -> torch.Tensor | None:
    """The embeddings the batch sampler uses this epoch (None: TF-IDF). At a fresh epoch
    start, the model re-embeds `texts` when the sampler asks; resuming mid-epoch, the
    embeddings saved with the checkpoint are put back instead, since re-embedding with
    mid-epoch weights would change the batches still to come."""
    if resume is None:
        fresh = refresh_sampler_similarity(sampler, model, epoch, texts)
        return current if fresh is None else fresh
    saved = resume.get("sampler_embeddings")
    if saved is not None:
        sampler.refresh_similarity(saved)
    return saved


def best_after_resume(
    resumed: str, best_name: str, best_epoch: int | None, best_score: float | None
) -> tuple[int | None, float | None, str | None]:
    """The best epoch, score and checkpoint path a resumed run carries on with: forgotten
    when the best checkpoint is not next to the resumed one (it cannot be reloaded)."""
    best = Path(resumed).expanduser().parent / best_name
    if best_epoch is not None and not best.is_file():
        logger.warning("no %s next to the resumed checkpoint: best score forgotten", best)
        return None, None, None
    return best_epoch, best_score, str(best) if best_epoch is not None else None
