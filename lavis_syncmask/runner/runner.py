"""`runner_syncmask`: LAVIS's runner fixed for CPU, one GPU and torchrun, with exact resume.

What it changes in `RunnerBase` (lavis-notes.md, "Runner pitfalls"), each for a reason: the
model is never None and DDP gets `device_ids` only on CUDA; no CUDA stream on a CPU and no
unconditional `dist.barrier()`; the epoch loop is `runner/loop.py` (accumulation, clipping,
`run.amp`); checkpoints hold the full state (momentum encoders, queues, optimizer, scaler, RNG)
and load with `weights_only=True`, mid-epoch and on SIGTERM too (`runner/checkpointing.py`);
every `run.*` key is read, typed and checked once into `self.settings` (`RunSettings`); a
relative `run.output_dir` is taken from the working directory; `run.batch_sampler` builds the
semi-hard batch sampler. Task hooks: `before_train_epoch`, `after_train_epoch` /
`epoch_means`, `resume_state` / `load_resume_state`.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from lavis.common.registry import registry
from lavis.runners.runner_base import RunnerBase
from omegaconf import OmegaConf

from lavis_syncmask.common.checkpoint import (
    checkpoint_name,
    load_checkpoint,
    load_model_weights,
    prune_checkpoints,
    restore_training_state,
    save_checkpoint,
)
from lavis_syncmask.common.distributed import (
    barrier,
    broadcast_object,
    get_rank,
    get_world_size,
    is_dist,
    is_main_process,
)
from lavis_syncmask.common.precision import AmpMode
from lavis_syncmask.runner import checkpointing as policy
from lavis_syncmask.runner.devices import place_model, resolve_device
from lavis_syncmask.runner.loaders import (
    build_batch_sampler,
    build_loaders,
    sampler_metadata,
    set_loader_epoch,
)
from lavis_syncmask.runner.loop import LoopSettings, epoch_seed, seed_everything, train_one_epoch
from lavis_syncmask.runner.output import append_log, jsonable, prepare_run_folder
from lavis_syncmask.runner.resume import EpochProgress, any_rank
from lavis_syncmask.runner.scheduler import STEP_SCHEDULER, UpdateClock, step_scheduler
from lavis_syncmask.runner.settings import RunSettings
from lavis_syncmask.runner.signals import StopRequests
from lavis_syncmask.runner.step_log import STEP_LOG, StepRecorder, restart_step_log

logger = logging.getLogger(__name__)

BEST_CHECKPOINT = "checkpoint_best.pth"


@registry.register_runner("runner_syncmask")
class RunnerSyncMask(RunnerBase):
    """Epoch-based runner; construct as LAVIS's: `RunnerSyncMask(cfg, task, model, datasets,
    job_id)`, then `.train()` or `.evaluate(skip_reload=True)`."""

    def __init__(self, cfg: Any, task: Any, model: Any, datasets: dict, job_id: str) -> None:
        # Fail before any output exists when the config is wrong.
        self.settings = RunSettings.of(cfg)  # the launcher's, else read from cfg.run_cfg
        sampler_cls = self.batch_sampler_class() if self.settings.batch_sampler else None
        self.sampler_settings = self.settings.sampler_settings.checked_for(sampler_cls)
        if self.settings.distributed and not is_dist():
            raise ValueError(
                "run.distributed is true but no process group is initialised; launch with "
                "torchrun and `python -m lavis_syncmask.train` (which sets it up)"
            )
        self.best_epoch: int | None = None
        self.best_agg_metric: float | None = None
        # Where the best weights are: this run's folder, or the folder a resume came from.
        self.best_checkpoint: str | None = None
        self._batch_sampler: Any | None = None
        self._sampler_texts: list[str] = []
        self._stop = StopRequests()
        # A mid-epoch checkpoint's state ({"ranks": [...], "sampler_embeddings"}), until used.
        self._resume: dict[str, Any] | None = None
        self._sampler_embeddings: torch.Tensor | None = None
        self._max_steps_reached = False
        super().__init__(cfg, task, model, datasets, job_id)
        if self.settings.amp and self.device.type != "cuda":
            logger.warning("run.amp is set but the device is %s: AMP stays off", self.device)

    # ------------------------------------------------------------------ settings
    @property
    def use_distributed(self) -> bool:
        return self.settings.distributed

    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = resolve_device(self.settings.device, self.use_distributed,
                                          self.settings.gpu)  # fmt: skip
        return self._device

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def max_epoch(self) -> int:
        if self.settings.max_epoch is None and not self.settings.evaluate:
            raise ValueError("run.max_epoch is not set: how many epochs should this run train?")
        return self.settings.max_epoch or 0

    @property
    def evaluate_only(self) -> bool:
        return self.settings.evaluate

    @property
    def amp(self) -> AmpMode | None:
        """`run.amp` (bf16 | fp16) on CUDA, else None: autocast stays off on a CPU."""
        return (self.settings.amp or None) if self.device.type == "cuda" else None

    @property
    def use_amp(self) -> bool:
        return self.amp is not None

    @property
    def loop_settings(self) -> LoopSettings:
        return self.settings.loop_settings(amp=self.amp)

    @property
    def update_clock(self) -> UpdateClock:
        """The run counted in optimizer updates (`run.max_steps` caps it)."""
        return UpdateClock(len(self.train_loader), self.settings.accum_grad_iters,
                           self.max_epoch, self.settings.max_steps)  # fmt: skip

    @property
    def lr_scheduler(self) -> Any:
        """LAVIS's scheduler for `run.lr_sched`; the per-update one also needs the loader's
        length and the accumulation, which LAVIS's constructor call does not pass."""
        if self._lr_sched is None and self.settings.lr_sched == STEP_SCHEDULER:
            self._lr_sched = step_scheduler(self.settings, self.optimizer, self.update_clock)
        return super().lr_scheduler

    @property
    def model(self) -> torch.nn.Module:
        """The model on its device, DDP-wrapped when distributed (built once, never None)."""
        if self._wrapped_model is None:
            self._wrapped_model = place_model(self._model, self.device, self.use_distributed,
                                              self.settings.find_unused_parameters)  # fmt: skip
            self._model = self.unwrap_dist_model(self._wrapped_model)
        return self._wrapped_model

    @property
    def scaler(self) -> Any | None:
        if self.amp == "fp16" and self._scaler is None:  # bf16 needs no loss scaling
            self._scaler = torch.amp.GradScaler("cuda")
        return self._scaler

    def batch_sampler_class(self) -> type:
        """The batch sampler `run.batch_sampler` builds (imported only when one is asked for)."""
        from lavis_syncmask.sampling.batch_sampler import SemiHardBatchSampler

        return SemiHardBatchSampler

    # ------------------------------------------------------------------ output
    def setup_output_dir(self) -> None:
        self.output_dir, self.result_dir = prepare_run_folder(
            self.settings.output_dir, self.job_id, self.config_yaml()
        )

    def config_yaml(self) -> str:
        """The resolved configuration (run, model, datasets) as yaml."""
        return OmegaConf.to_yaml(self.config.config, resolve=True)

    def log_stats(self, stats: Any, split_name: str) -> None:
        append_log(self.output_dir, stats, split_name)

    # ------------------------------------------------------------------ loaders
    def create_loaders(
        self, datasets: list, num_workers: int, batch_sizes: list[int], is_trains: list[bool],
        collate_fns: list, dataset_ratios: Any = None,
    ) -> list:  # fmt: skip
        semi_hard = self.sampler_settings.mode is not None
        return build_loaders(
            datasets, batch_sizes, is_trains, collate_fns, num_workers=int(num_workers),
            on_cuda=self.cuda_enabled, seed=self.seed, distributed_eval=self.use_dist_eval_sampler,
            train_batch_sampler=self._make_batch_sampler if semi_hard else None,
        )  # fmt: skip

    def _make_batch_sampler(self, dataset: Any, batch_size: int) -> Any:
        meta = sampler_metadata(dataset)
        self._sampler_texts = [str(text) for text in meta["texts"]]
        self._batch_sampler = build_batch_sampler(
            self.batch_sampler_class(), meta, self.sampler_settings, batch_size=batch_size,
            seed=self.seed, num_replicas=get_world_size(), rank=get_rank(),
        )  # fmt: skip
        logger.info("train batches from %s (mode %s)", type(self._batch_sampler).__name__,
                    self.sampler_settings.mode)  # fmt: skip
        return self._batch_sampler

    # ------------------------------------------------------------------ training
    def train(self) -> None:
        start = time.time()
        self.log_config()
        if not self.evaluate_only and self.resume_ckpt_path:
            self._load_checkpoint(self.resume_ckpt_path)
        if not self.evaluate_only:
            resumed_at = int(self._resume["ranks"][0]["iteration"]) if self._resume else 0
            restart_step_log(self.output_dir, self.start_epoch, resumed_at)
        last_epoch = self.start_epoch - 1
        with self._stop:  # SIGTERM / SIGINT: checkpoint, then TrainingStopped
            for epoch in range(self.start_epoch, self.max_epoch):
                if not self.evaluate_only:
                    self.log_stats(self.train_epoch(epoch), "train")
                self._validate(epoch)
                if self.evaluate_only:
                    break
                self._save_checkpoint(epoch, is_best=False)
                barrier()  # no rank may read a checkpoint before rank 0 has written it
                last_epoch = epoch
                if any_rank(self._stop.signum is not None):
                    checkpoint = self.output_dir / checkpoint_name(epoch)
                    raise policy.stopped_by_signal(self._stop, checkpoint)
                if self._max_steps_reached:  # run.max_steps: this epoch was the last
                    break
        test_epoch: Any = "best" if self.best_epoch is not None else last_epoch
        self.evaluate(cur_epoch=test_epoch, skip_reload=self.evaluate_only)
        elapsed = datetime.timedelta(seconds=int(time.time() - start))
        logger.info("training time %s", elapsed)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        loader = self.train_loader
        progress = self._start_epoch(loader, epoch)
        inner = policy.StepHook(self.settings, self._stop, self._save_progress, len(loader),
                                0 if progress is None else progress.iteration)  # fmt: skip
        log_file = self.output_dir / STEP_LOG if self.settings.log_every_step else None
        hook = StepRecorder(inner, task=self.task, optimizer=self.optimizer,
                            clock=self.update_clock, log_file=log_file)  # fmt: skip
        stats: dict[str, Any] = train_one_epoch(
            task=self.task, model=self.model, loader=loader, optimizer=self.optimizer,
            lr_scheduler=self.lr_scheduler, scaler=self.scaler, device=self.device, epoch=epoch,
            settings=self.loop_settings, progress=progress, after_step=hook,
        )  # fmt: skip
        if stats.get("stopped") and hook.reached:
            self._max_steps_reached = True
            del stats["stopped"]
        elif stats.get("stopped"):
            self.log_stats(stats, "train")
            raise policy.stopped_by_signal(self._stop, inner.checkpoint)
        stats.update(self._task_epoch_stats(epoch))
        if self._batch_sampler is not None:
            sampler_stats = self._batch_sampler.epoch_statistics()
            stats.update({f"sampler_{k}": v for k, v in sampler_stats.items()})
        logger.info("epoch %d train stats: %s", epoch, json.dumps(stats, default=jsonable))
        return stats

    def _start_epoch(self, loader: Any, epoch: int) -> EpochProgress | None:
        """Epoch set-up; returns the progress to resume from when a mid-epoch checkpoint of
        this epoch was loaded (its batches are then skipped, its state restored)."""
        resume, self._resume = self._resume, None
        set_loader_epoch(loader, epoch)
        if self._batch_sampler is not None:
            model = self.unwrap_dist_model(self.model)
            self._sampler_embeddings = policy.sampler_similarity_for_epoch(
                self._batch_sampler, model, epoch, self._sampler_texts, resume,
                self._sampler_embeddings,
            )  # fmt: skip
        hook = getattr(self.task, "before_train_epoch", None)
        if callable(hook):
            hook(epoch)
        seed_everything(epoch_seed(self.seed, get_rank(), epoch))
        if resume is None:
            return None
        source = str(self.resume_ckpt_path)
        return policy.resume_epoch(resume, self.task, loader, self._run_identity, source)

    @functools.cached_property
    def _run_identity(self) -> dict[str, Any]:
        """What this run's epoch order depends on, as a mid-epoch checkpoint records it."""
        return policy.run_identity(self.settings, self.train_loader)

    def _task_epoch_stats(self, epoch: int) -> dict[str, Any]:
        after = getattr(self.task, "after_train_epoch", None)
        if callable(after):
            return dict(after(epoch) or {})
        means = getattr(self.task, "epoch_means", None)
        return dict(means() or {}) if callable(means) else {}

    # ------------------------------------------------------------------ evaluation
    def _validate(self, epoch: int) -> None:
        for split_name in self.valid_splits:
            val_log = self.eval_epoch(split_name=split_name, cur_epoch=epoch)
            if not isinstance(val_log, dict) or not is_main_process() or not val_log:
                continue
            if "agg_metrics" not in val_log:
                raise ValueError(
                    f"{type(self.task).__name__} returned no 'agg_metrics' for split "
                    f"{split_name!r}; keys: {sorted(val_log)}"
                )
            score = float(val_log["agg_metrics"])
            # The first validation split picks the best checkpoint (LAVIS: the one named val).
            improved = self.best_agg_metric is None or score > self.best_agg_metric
            if split_name == self.valid_splits[0] and improved and not self.evaluate_only:
                self.best_epoch, self.best_agg_metric = epoch, score
                self._save_checkpoint(epoch, is_best=True)
                self.best_checkpoint = str(self.output_dir / BEST_CHECKPOINT)
            self.log_stats({**val_log, "best_epoch": self.best_epoch}, split_name)
        # Only rank 0 sees the metrics; the others must agree on which checkpoint is best.
        self.best_epoch, self.best_agg_metric, self.best_checkpoint = broadcast_object(
            (self.best_epoch, self.best_agg_metric, self.best_checkpoint)
        )

    @torch.no_grad()
    def eval_epoch(self, split_name: str, cur_epoch: Any, skip_reload: bool = False) -> Any:
        data_loader = self.dataloaders.get(split_name, None)
        if data_loader is None:
            raise ValueError(
                f"no data for split {split_name!r}; splits built: {sorted(self.dataloaders)}"
            )
        model = self.unwrap_dist_model(self.model)
        if not skip_reload and cur_epoch == "best":
            model = self._reload_best_model(model)
        model.eval()
        logger.info("evaluating split %s (epoch %s)", split_name, cur_epoch)
        start = time.time()
        self.task.before_evaluation(model=model, dataset=self.datasets[split_name])
        results = self.task.evaluation(model, data_loader, cuda_enabled=self.cuda_enabled)
        logger.info("split %s evaluated in %.1f s", split_name, time.time() - start)
        if results is None:
            return None
        return self.task.after_evaluation(
            val_result=results, split_name=split_name, epoch=cur_epoch
        )

    def evaluate(self, cur_epoch: Any = "best", skip_reload: bool = False) -> dict | None:
        if not self.test_splits:
            return None
        logs = {}
        for split_name in self.test_splits:
            logs[split_name] = self.eval_epoch(split_name, cur_epoch, skip_reload=skip_reload)
            self.log_stats(logs[split_name], split_name)
        return logs

    # ------------------------------------------------------------------ checkpoints
    def _save_progress(self, progress: EpochProgress) -> Path | None:
        """A mid-epoch checkpoint at `progress` (every rank's RNG and running sums with it);
        returns its path (on the main process)."""
        state = policy.mid_epoch_state(
            progress, self.task, self._sampler_embeddings, self._run_identity
        )
        path = self._save_checkpoint(progress.epoch, resume=state)
        barrier()
        return path

    def _save_checkpoint(
        self, cur_epoch: int, is_best: bool = False, resume: dict[str, Any] | None = None
    ) -> Path | None:
        if not is_main_process():
            return None
        iteration = None if resume is None else int(resume["ranks"][0]["iteration"])
        name = BEST_CHECKPOINT if is_best else checkpoint_name(cur_epoch, iteration)
        path = save_checkpoint(
            self.output_dir / name, model=self.unwrap_dist_model(self.model),
            optimizer=self.optimizer, scaler=self.scaler, epoch=cur_epoch,
            config_yaml=self.config_yaml(), best_epoch=self.best_epoch,
            best_agg_metric=self.best_agg_metric, resume=resume,
        )  # fmt: skip
        prune_checkpoints(self.output_dir, self.settings.keep_last)
        return path

    def _load_checkpoint(self, url_or_filename: str) -> None:
        checkpoint = load_checkpoint(url_or_filename, "run.resume_ckpt_path")
        self.start_epoch = restore_training_state(
            checkpoint, model=self.unwrap_dist_model(self.model), optimizer=self.optimizer,
            scaler=self.scaler,
        )  # fmt: skip
        if checkpoint.get("resume") is not None:  # mid-epoch: that epoch again, from its batch
            self.start_epoch = int(checkpoint["epoch"])
            self._resume = policy.mid_epoch_resume(checkpoint, self.settings, url_or_filename)
        self.best_epoch = checkpoint.get("best_epoch")
        self.best_agg_metric = checkpoint.get("best_agg_metric")
        self.best_epoch, self.best_agg_metric, self.best_checkpoint = policy.best_after_resume(
            url_or_filename, BEST_CHECKPOINT, self.best_epoch, self.best_agg_metric
        )
        logger.info("resumed from %s: next epoch %d", url_or_filename, self.start_epoch)

    def _reload_best_model(self, model: torch.nn.Module) -> torch.nn.Module:
        path = self.best_checkpoint or str(self.output_dir / BEST_CHECKPOINT)
        load_model_weights(model, path, "best checkpoint")
        return model
