"""What `lavis_syncmask.train` and `lavis_syncmask.evaluate` share: flags, plugin imports,
process-group setup, seeding, and building task / datasets / model / runner from a config.

The LAVIS wheel ships no train script (lavis-notes.md, "No train script in the wheel"); this
follows the flow of the repository's `train.py` with the same flags (`--cfg-path`, `--options
k=v ...`), plus `--job-id` and `--import MODULE` (repeatable: extra plugin modules to import
before the config is read, e.g. a test's toy model) and `--overwrite` (write into a run
folder that already holds results; refused otherwise).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lavis_syncmask.runner.settings import RunSettings

HOST_MODULES = (
    "lavis_syncmask",
    # `import lavis` registers neither the runners nor the linear-warmup LR schedulers.
    "lavis.tasks",
    "lavis.runners",
    "lavis.common.optims",
    "lavis_syncmask.runner.runner",
)

logger = logging.getLogger(__name__)


@dataclass
class Session:
    """Everything a runner is built from."""

    cfg: Any
    task: Any
    datasets: dict
    model: torch.nn.Module
    job_id: str
    settings: RunSettings


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--cfg-path", required=True, help="path to the run's yaml config")
    parser.add_argument(
        "--options",
        nargs="+",
        default=[],
        help="override config entries: key=value pairs in dot notation, e.g. run.max_epoch=2",
    )
    parser.add_argument(
        "--job-id",
        default=None,
        help="name of the run's folder under run.output_dir (default: a timestamp and a "
        "random suffix, unique to this run)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="allow writing into a run folder that already holds results (default: refuse)",
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first so what it registers is known (repeatable)",
    )
    return parser


def import_modules(names: Sequence[str]) -> None:
    """Import the host's registering modules, then the user's `--import` modules."""
    for name in [*HOST_MODULES, *names]:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise  # the module exists but one of its own imports is missing
            raise ModuleNotFoundError(
                f"--import {name}: no such module (is it on PYTHONPATH?)", name=name
            ) from error


def check_raw_config(cfg_path: str) -> None:
    """What LAVIS's `Config` would drop or trip over: a top level that is not a mapping, a
    top-level section other than run / model / datasets (it keeps only those), and a dataset
    no builder is registered for."""
    from lavis_syncmask.cli.options import load_mapping
    from lavis_syncmask.common.keys import check_sections
    from lavis_syncmask.data.builders import check_dataset_names

    raw = load_mapping(cfg_path)
    check_sections(raw, where=cfg_path)
    check_dataset_names(raw)


def load_config(args: argparse.Namespace) -> Any:
    """LAVIS's `Config` of `--cfg-path` merged with `--options` (`cli/options`: entries
    without a value refused, `model.model_type` choosing the preset), its sections, `run.*`
    and `model.*` keys checked (an `--options` key may add a section too). The `run:` section
    is read here, once: its settings are attached to the config (`RunSettings.read`)."""
    from lavis_syncmask.cli.options import SyncMaskConfig, check_model_config
    from lavis_syncmask.common.keys import MERGED_SECTIONS, check_sections
    from lavis_syncmask.models.config import model_section

    if not Path(args.cfg_path).is_file():
        raise FileNotFoundError(f"--cfg-path: no config file at {args.cfg_path}")
    check_raw_config(args.cfg_path)
    cfg = SyncMaskConfig(args)
    check_sections(cfg.config, f"{args.cfg_path} with --options", MERGED_SECTIONS)
    RunSettings.read(cfg)  # fails before anything starts
    check_model_config(model_section(cfg))
    return cfg


def resolve_job_id(requested: str | None) -> str:
    """`--job-id`, else a timestamp plus a random suffix taken on rank 0 (so every rank writes
    to one folder, and two runs started in the same second never share one)."""
    from lavis_syncmask.common.distributed import broadcast_object

    if requested:
        if "/" in requested or requested in (".", ".."):
            raise ValueError(f"--job-id {requested!r} must be a plain folder name")
        return requested
    stamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    return broadcast_object(f"{stamp}_{secrets.token_hex(4)}")


def refuse_existing_results(settings: RunSettings, job_id: str, overwrite: bool) -> None:
    """Claim the run folder for this run (a second run with the same `--job-id` started
    alongside is refused, `common/paths.claim_job_folder`), and never write into a folder that
    holds results unless `--overwrite`; resuming from a checkpoint of that same folder
    continues the run there and is allowed."""
    from lavis_syncmask.common.distributed import broadcast_object, is_main_process
    from lavis_syncmask.common.paths import claim_job_folder, existing_results, job_folder

    problem = None
    if is_main_process():  # one verdict, before rank 0 writes anything there
        folder = job_folder(settings.output_dir, job_id)
        try:
            claim_job_folder(folder)
        except FileExistsError as error:
            problem = str(error)
        found = [] if problem else existing_results(folder)
        resume = settings.resume_ckpt_path
        resumed_from = Path(str(resume)).expanduser().resolve().parent if resume else None
        if found and not overwrite and resumed_from != folder.resolve():
            problem = (
                f"run folder {folder} already holds results ({', '.join(found)}); choose "
                "another --job-id, or pass --overwrite to write into it anyway"
            )
    problem = broadcast_object(problem)
    if problem is not None:
        raise FileExistsError(problem)


def join_process_group(cfg: Any) -> RunSettings:
    """Join torchrun's process group (`run.dist_backend`) and record it in the run settings:
    `distributed`, `rank`, `world_size`, `gpu`, `dist_backend`, and `device` (cpu, with a
    warning, when it names CUDA on a machine without it)."""
    from lavis_syncmask.common.distributed import init_distributed, usable_device

    settings = RunSettings.of(cfg)
    info = init_distributed(backend=settings.dist_backend)
    return RunSettings.update(
        cfg,
        distributed=info.distributed,
        rank=info.rank,
        world_size=info.world_size,
        gpu=info.local_rank,
        dist_backend=info.backend,
        device=usable_device(settings.device),
    )


def point_tokenizer_at_data(cfg: Any) -> None:
    """A relative `model.tokenizer` found under a dataset's `data_root` is written back as
    that path (`data/tokenizer.locate_tokenizer`), so `data_root` alone locates the vocab."""
    from lavis_syncmask.data.builders import dataset_roots
    from lavis_syncmask.data.tokenizer import locate_tokenizer
    from lavis_syncmask.models.config import model_section, set_model_key

    found = locate_tokenizer(model_section(cfg).get("tokenizer"), dataset_roots(cfg))
    if found is not None:
        set_model_key(cfg, "tokenizer", str(found))


def prepare(args: argparse.Namespace, configure: Callable[[Any], None] | None = None) -> Session:
    """Imports, config, process group, seeds, logger, then task, datasets and model;
    `configure(cfg)` may edit the config just before the task is set up."""
    import_modules(args.imports)
    from lavis import tasks
    from lavis.common.logger import setup_logger

    from lavis_syncmask.cli.options import check_queue_fits_batch
    from lavis_syncmask.common.distributed import get_rank
    from lavis_syncmask.models.config import model_section
    from lavis_syncmask.runner.loop import seed_everything

    cfg = load_config(args)
    join_process_group(cfg)
    torch.backends.cudnn.benchmark = False
    setup_logger()
    job_id = resolve_job_id(args.job_id)
    overwrite = bool(getattr(args, "overwrite", False))
    refuse_existing_results(RunSettings.of(cfg), job_id, overwrite)
    if configure is not None:
        configure(cfg)
    point_tokenizer_at_data(cfg)
    settings = RunSettings.of(cfg)  # final: the launcher's and `configure`'s changes in
    check_queue_fits_batch(model_section(cfg), settings)  # the world size is known from here
    if settings.deterministic:
        make_deterministic()
    seed_everything(settings.seed + get_rank())
    cfg.pretty_print()
    task = tasks.setup_task(cfg)
    datasets = task.build_datasets(cfg)
    model = task.build_model(cfg)
    return Session(cfg, task, datasets, model, job_id, settings)


def make_deterministic() -> None:
    """`run.deterministic`: one CPU thread (a reduction's order depends on the thread count)
    and deterministic kernels, so the same config and seed give the same metrics twice."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what cuBLAS asks for
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def make_runner(session: Session) -> Any:
    """The runner named by `run.runner` (default `runner_syncmask`), constructed."""
    from lavis.common.registry import registry

    name = session.settings.runner
    runner_cls = registry.get_runner_class(name)
    if runner_cls is None:
        raise ValueError(f"run.runner={name!r} is not registered; known: {registry.list_runners()}")
    return runner_cls(
        cfg=session.cfg,
        task=session.task,
        model=session.model,
        datasets=session.datasets,
        job_id=session.job_id,
    )
