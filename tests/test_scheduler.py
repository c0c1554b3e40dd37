"""`syncmask_warmup_cosine_step`: the benchmark's per-update warm-up + cosine as a LAVIS
scheduler; the runner steps it once per optimizer update and stops at `run.max_steps`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from bench_fixtures import BENCH_DIR, make_catalogue, tiny_options

from lavis_syncmask.runner.scheduler import STEP_SCHEDULER, WarmupCosineStepScheduler


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_catalogue(tmp_path_factory)


def _scheduler(**kwargs: object) -> WarmupCosineStepScheduler:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    args = dict(max_epoch=2, min_lr=1e-5, init_lr=3e-3, warmup_start_lr=1e-5)
    args.update(kwargs)
    return WarmupCosineStepScheduler(optimizer, **args)  # type: ignore[arg-type]


def expected_lr(update: int, total: int, warm: int) -> float:
    """The old benchmark's `set_lr`: linear from 1e-5 over `warm` updates, then cosine."""
    if update < warm:
        return 1e-5 + (3e-3 - 1e-5) * update / warm
    return 1e-5 + (3e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * (update - warm) / (total - warm)))


def test_registered_in_lavis_and_per_update_with_a_warmup_share() -> None:
    from lavis.common.registry import registry

    assert registry.get_lr_scheduler_class(STEP_SCHEDULER) is WarmupCosineStepScheduler
    sched = _scheduler(max_epoch=8, iters_per_epoch=56, warmup_share=0.05)
    assert sched.clock.total_updates == 448 and sched.warmup == 22
    for update in (0, 1, 21, 22, 23, 200, 447):
        epoch, iteration = divmod(update, 56)
        sched.step(cur_epoch=epoch, cur_step=iteration)
        lr = sched.optimizer.param_groups[0]["lr"]
        assert lr == pytest.approx(expected_lr(update, 448, 22), rel=1e-12)


def test_accumulation_changes_the_rate_once_per_update() -> None:
    # 10 micro-batches an epoch, 3 per update: 4 updates an epoch (the last one partial).
    sched = _scheduler(iters_per_epoch=10, accum_grad_iters=3, warmup_steps=2)
    assert sched.clock.total_updates == 8
    rates = []
    for epoch in range(2):
        for i in range(10):
            sched.step(cur_epoch=epoch, cur_step=i)
            rates.append(sched.optimizer.param_groups[0]["lr"])
    assert rates[0] == rates[1] == rates[2] != rates[3]
    assert rates[9] == pytest.approx(expected_lr(3, 8, 2)) and rates[10] != rates[9]
    assert rates[19] == pytest.approx(expected_lr(7, 8, 2))


def test_max_steps_shortens_the_schedule() -> None:
    sched = _scheduler(iters_per_epoch=10, max_steps=12, warmup_steps=2)
    assert sched.clock.total_updates == 12
    assert sched.lr_at(11) == pytest.approx(expected_lr(11, 12, 2))


def test_the_runner_steps_it_per_update_and_stops_at_max_steps(
    catalogue: Path,
    tmp_path: Path,
) -> None:
    from lavis_syncmask.cli.train import main

    options = tiny_options(catalogue, tmp_path, steps=4)
    options += ["run.accum_grad_iters=2", "run.deterministic=false", "run.max_epoch=3"]
    argv = ["--cfg-path", str(BENCH_DIR / "a_syncmask.yaml"), "--job-id", "acc"]
    assert main([*argv, "--options", *options]) == 0
    lines = [json.loads(x) for x in (tmp_path / "acc" / "metrics.jsonl").read_text().splitlines()]
    # 45 training rows in batches of 8: 5 iterations an epoch, so 3 updates (the last one a
    # partial group); the 4th update ends at epoch 1's second iteration.
    assert [x["update"] for x in lines] == [0, 0, 1, 1, 2, 3, 3]
    assert len({x["lr"] for x in lines[:2]}) == 1 and lines[2]["lr"] > lines[1]["lr"]
    assert all(math.isfinite(x["loss_itc"]) and "image_cos" in x for x in lines)
    assert sorted(p.name for p in (tmp_path / "acc").glob("checkpoint_*.pth")) == [
        "checkpoint_0.pth",
        "checkpoint_1.pth",
    ]
