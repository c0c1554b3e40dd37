"""What the bad-step guard of the training loop costs (issue 20; runner/step_guard.py): the time
of a SyncMask training step with and without the guard's per-update work (a copy of every buffer
and frozen parameter, and the gradient-norm check before the optimizer step), interleaved round
by round, and the memory its copy holds.

    python benchmarks/bench_step_guard.py --size tiny --device cpu
    python benchmarks/bench_step_guard.py --size base --device cuda --amp bf16
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from gpu_step_bench import SIZES, build, make_batch, write_bench_vocab  # noqa: E402
from lavis.tasks.base_task import BaseTask  # noqa: E402
from smoke import parse_with_smoke  # noqa: E402

from lavis_syncmask.runner.loop import LoopSettings, one_update  # noqa: E402
from lavis_syncmask.runner.step_guard import ForwardStateGuard  # noqa: E402


def step(model: Any, optimizer: Any, samples: dict, amp: str | None, guard: Any) -> None:
    """One update as `runner/loop.py` makes it (`one_update`), with the guard's work when
    `guard` is given."""
    one_update(BaseTask(), model, samples, optimizer, LoopSettings(amp=amp), guard=guard)


def _timed(device: torch.device, steps: int, run: Callable[[], None]) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=["bf16", "none"], default="none")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    args = parse_with_smoke(parser, {"steps": 1, "rounds": 1})
    device, amp = torch.device(args.device), None if args.amp == "none" else args.amp
    with tempfile.TemporaryDirectory() as tmp:
        model, optimizer = build(args.size, "syncmask", write_bench_vocab(Path(tmp)), device)
    samples = make_batch(args.size, model, device, args.batch or SIZES[args.size]["batch"])
    guard = ForwardStateGuard(model)
    arms = {"plain": None, "guarded": guard}
    for arm in arms.values():  # warm-up, and the guard's copies allocated
        step(model, optimizer, samples, amp, arm)
    times: dict[str, list[float]] = {name: [] for name in arms}
    for round_index in range(args.rounds):
        for name in sorted(arms, reverse=bool(round_index % 2)):
            run = lambda arm=arms[name]: step(model, optimizer, samples, amp, arm)  # noqa: E731
            times[name].append(_timed(device, args.steps, run))
    copy_mib = sum(t.numel() * t.element_size() for t in guard.saved.values()) / 2**20
    weights_mib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    plain, guarded = (statistics.median(times[name]) for name in ("plain", "guarded"))
    print(f"machine: {platform.platform()}, {torch.get_num_threads()} threads, {args.device}")
    print(f"config: {vars(args)}")
    print(f"step: plain {plain * 1e3:.1f} ms, guarded {guarded * 1e3:.1f} ms "
          f"({(guarded / plain - 1) * 100:+.1f}%), medians of {args.rounds} rounds")  # fmt: skip
    print(f"guard copy: {copy_mib:.1f} MiB (all weights: {weights_mib:.1f} MiB)")


if __name__ == "__main__":
    main()
