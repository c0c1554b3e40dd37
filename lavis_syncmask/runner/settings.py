"""Every `run.*` key of a run config, typed, with its default, in one place.

This module is the one reader (and writer) of a config's `run:` section. The launcher reads it
once per process and attaches the settings to LAVIS's `Config` (`RunSettings.read`); the
runner, its loop and loaders and the tasks take them from there (`RunSettings.of(cfg)`)
instead of calling `run_cfg.get(...)` with their own defaults, and a later change (process
group, device, the evaluation launcher's checkpoint and splits) goes through
`RunSettings.update`, which also writes it into `run:` for LAVIS's own runner code and the
saved `config.yaml`. A value of the wrong type names its key (`run.seed must be an int, got
'abc'`), a float where an int is due is an error (not truncated), and an unknown key fails
with the valid ones and a "did you mean".

Keys that LAVIS itself reads (its runners, tasks, schedulers and `init_distributed_mode`) stay
accepted so a LAVIS task or runner still works through this plugin's launcher. `check_sections`
(`common/keys.py`) does the same for the top level of a config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from lavis_syncmask.common.keys import Range, check_range, coerce, reject_unknown
from lavis_syncmask.common.precision import AmpMode, AmpSetting
from lavis_syncmask.runner.loop import LoopSettings
from lavis_syncmask.sampling.settings import SamplerMode, SamplerSettings

#: LAVIS's optimiser keys, checked here since torch's own error names no key. `warmup_lr` may
#: also be -1 (LAVIS: start the warm-up at init_lr).
OPTIMISER_RANGES: dict[str, Range] = {
    "init_lr": Range(0, low_open=True),
    "min_lr": Range(0),
    "warmup_lr": Range(0, why="or -1: start the warm-up at run.init_lr"),
    "weight_decay": Range(0),
}
Protocol = Literal["sample100", "full"]
#: The attribute of LAVIS's `Config` that holds the launcher's settings.
_ATTACHED = "run_settings"


@dataclass(frozen=True)
class RunSettings:
    """The `run:` section of a config. Fields without a comment are LAVIS's own keys."""

    # --- what runs
    task: str = ""  # registered task name (LAVIS `tasks.setup_task`); required
    runner: str = "runner_syncmask"  # registered runner class
    evaluate: bool = False  # evaluation only: no training epochs
    train_splits: tuple[str, ...] = ()
    valid_splits: tuple[str, ...] = ()  # the first one picks the best checkpoint
    test_splits: tuple[str, ...] = ()
    # --- optimisation (LAVIS builds AdamW and the LR schedule from these)
    lr_sched: str = "linear_warmup_cosine_lr"
    init_lr: float = 1e-4
    min_lr: float = 0.0
    warmup_lr: float = -1.0  # -1: warm-up starts at init_lr (LAVIS)
    warmup_steps: int = 0
    # syncmask_warmup_cosine_step only: warm-up as a share of all updates (overrides
    # warmup_steps), and a cap on the run's optimizer updates (null: max_epoch epochs).
    warmup_share: float | None = None
    max_steps: int | None = None
    lr_decay_rate: float | None = None  # step schedule only
    weight_decay: float = 0.05
    beta2: float = 0.999
    max_epoch: int | None = None  # required to train; at least 1
    batch_size_train: int = 32  # per rank
    batch_size_eval: int = 64  # per rank
    num_workers: int = 4
    accum_grad_iters: int = 1  # micro-batches per optimizer update
    max_grad_norm: float | None = None  # gradient clipping (null: none)
    amp: AmpSetting = False  # autocast on CUDA: bf16 | fp16 | false (true means fp16)
    train_dataset_ratios: Mapping[str, float] | None = None
    # --- batches (method.md section 4)
    batch_sampler: SamplerMode | None = None  # semi_hard | grouped | random | null (plain)
    sampler: Mapping[str, Any] = field(default_factory=dict)  # batch sampler knobs
    # --- reproducibility, logging, output
    seed: int = 42  # a process seeds with seed + rank, each epoch from (seed, rank, epoch)
    # One CPU thread and torch.use_deterministic_algorithms: two runs give identical metrics.
    deterministic: bool = False
    log_every_step: bool = False  # one line per iteration in the run folder's metrics.jsonl
    log_freq: int = 50  # progress-bar refresh, in iterations
    output_dir: str = "output"  # relative: from the working directory
    resume_ckpt_path: str | None = None  # a checkpoint of this runner to continue from
    # A mid-epoch checkpoint restarts its epoch at batch 0 (to change batch size, processes
    # or data, which make resuming at its batch an error).
    resume_from_epoch_start: bool = False
    checkpoint: str | None = None  # weights evaluated (set by the evaluation launcher)
    save_every_iters: int = 0  # mid-epoch checkpoint every N iterations (0: off)
    keep_last: int = 0  # checkpoints kept on disk (0: all)
    max_bad_steps: int = 5  # consecutive non-finite losses before the run stops
    # --- devices and processes (the launcher fills rank / world_size / gpu from torchrun)
    device: str = "cpu"  # cpu | cuda | cuda:N
    distributed: bool = False
    world_size: int = 1
    rank: int = 0
    gpu: int = 0  # local rank's GPU index
    dist_url: str = "env://"
    dist_backend: Literal["nccl", "gloo"] | None = None  # null: NCCL on GPU, gloo on CPU
    find_unused_parameters: bool = False  # DDP option, for models with idle branches
    use_dist_eval_sampler: bool = True
    # --- evaluation protocols (syncmask_retrieval; benchmarks-and-data.md)
    protocol: Protocol = "sample100"
    repeats: int = 5  # sample100: seeds 0 .. repeats-1 unless `seeds` is set
    seeds: tuple[int, ...] | None = None
    n_queries: int = 1000  # sample100 queries per seed
    k_test: int = 128  # full protocol: ITM re-ranks each query's ITC top k_test
    # full protocol's re-ranking score: itm (ITM match probability) | itm_itc (ITM logit + ITC
    # cosine, LAVIS's ALBEF / BLIP retrieval); metrics.json records it as `full_scoring`
    full_scoring: Literal["itm", "itm_itc"] = "itm"
    # --- read by LAVIS's own tasks / runner_iter only; accepted, unused by this plugin
    report_metric: bool | None = None
    inference_method: str | None = None
    max_len: int | None = None
    min_len: int | None = None
    num_beams: int | None = None
    num_ans_candidates: int | None = None
    prompt: str | None = None
    max_iters: int | None = None
    iters_per_inner_epoch: int | None = None

    def __post_init__(self) -> None:
        positive = ("batch_size_train", "batch_size_eval", "log_freq")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"run.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "warmup_steps", "save_every_iters", "keep_last"):
            if getattr(self, name) < 0:
                raise ValueError(f"run.{name} must be >= 0, got {getattr(self, name)}")
        for name, allowed in OPTIMISER_RANGES.items():
            if not (name == "warmup_lr" and self.warmup_lr == -1):
                check_range(f"run.{name}", getattr(self, name), allowed)
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"run.max_steps must be >= 1 or null, got {self.max_steps}")
        if self.warmup_share is not None and not 0.0 <= self.warmup_share < 1.0:
            raise ValueError(f"run.warmup_share must be in [0, 1) or null, got {self.warmup_share}")
        if self.max_bad_steps < 1:
            raise ValueError(f"run.max_bad_steps must be >= 1, got {self.max_bad_steps}")
        if self.max_epoch is not None and self.max_epoch < 1 and not self.evaluate:
            raise ValueError(
                f"run.max_epoch={self.max_epoch} trains nothing: set it to 1 or more, or set "
                "run.evaluate=true (python -m lavis_syncmask.evaluate) to only evaluate"
            )
        SamplerSettings(self.batch_sampler, self.sampler)  # checks the mode
        self.loop_settings(amp=None)  # checks accum_grad_iters and max_grad_norm

    # ------------------------------------------------------------------ reading
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_run_cfg(cls, run_cfg: Mapping[str, Any] | None) -> RunSettings:
        """Typed settings of a `run:` mapping (a DictConfig or a dict); raises ValueError
        naming the key on an unknown key or a value of the wrong type."""
        if run_cfg is None:
            raise ValueError("the config has no `run:` section")
        values = _plain(run_cfg)
        if not isinstance(values, dict):
            raise ValueError(f"`run:` must be a mapping, got {type(values).__name__}")
        reject_unknown("run", values, cls.field_names())
        hints = typing.get_type_hints(cls)
        typed = {key: coerce(f"run.{key}", value, hints[key]) for key, value in values.items()}
        if typed.get("amp") is True:  # the old boolean switch: autocast's default, float16
            typed["amp"] = "fp16"
        return cls(**typed)

    @classmethod
    def read(cls, cfg: Any) -> RunSettings:
        """Read and check the `run:` section of a LAVIS `Config` and attach the settings to it
        (the launcher, once per process)."""
        return cls.from_run_cfg(cfg.run_cfg).attach(cfg)

    @classmethod
    def of(cls, cfg: Any) -> RunSettings:
        """The settings of a LAVIS `Config` (or any object with a `run_cfg`): those the launcher
        attached, else `cfg.run_cfg` read now (a runner or task built outside the launcher)."""
        attached = getattr(cfg, _ATTACHED, None)
        return attached if isinstance(attached, cls) else cls.from_run_cfg(cfg.run_cfg)

    def attach(self, cfg: Any) -> RunSettings:
        """Make these the settings `RunSettings.of(cfg)` returns; returns them."""
        setattr(cfg, _ATTACHED, self)
        return self

    @classmethod
    def update(cls, cfg: Any, **changes: Any) -> RunSettings:
        """`cfg`'s settings with `changes` (checked like the yaml's values), attached to `cfg`
        and written into its `run:` section, which LAVIS's runner code reads and `config.yaml`
        records."""
        reject_unknown("run", changes, cls.field_names())
        hints = typing.get_type_hints(cls)
        typed = {key: coerce(f"run.{key}", value, hints[key]) for key, value in changes.items()}
        updated = dataclasses.replace(cls.of(cfg), **typed)
        run_cfg = cfg.run_cfg
        with open_dict(run_cfg) if OmegaConf.is_config(run_cfg) else contextlib.nullcontext():
            for key, value in typed.items():
                run_cfg[key] = list(value) if isinstance(value, tuple) else value
        return updated.attach(cfg)

    @property
    def sampler_settings(self) -> SamplerSettings:
        return SamplerSettings(self.batch_sampler, dict(self.sampler))

    def loop_settings(self, amp: AmpMode | None) -> LoopSettings:
        """How the epoch loop updates; `amp` is decided by the runner (None off CUDA)."""
        return LoopSettings(
            accum_grad_iters=self.accum_grad_iters,
            max_grad_norm=self.max_grad_norm,
            amp=amp,
            log_freq=self.log_freq,
        )

    @property
    def eval_seeds(self) -> tuple[int, ...]:
        """The sample100 seeds: `seeds`, else 0 .. repeats-1."""
        return self.seeds if self.seeds is not None else tuple(range(self.repeats))


def _plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
