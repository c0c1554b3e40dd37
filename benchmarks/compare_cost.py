"""Training cost of each benchmark method against LAVIS's ALBEF: step time measured
interleaved in one process (every method steps once per round, the order rotating, on the same
real batch; median over rounds), and peak memory growth over three steps in a fresh process
per method (peak RSS on CPU, `max_memory_allocated` on GPU).
"""

from __future__ import annotations

import concurrent.futures as futures
import ctypes
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_train import METHODS, Recipe, build_model, datasets, optimizer_for  # noqa: E402

from lavis_syncmask.common.processes import run_group  # noqa: E402


def _batch(data_dir: Path, recipe: Recipe) -> dict[str, Any]:
    train, _ = datasets(data_dir, recipe.image_size)
    samples = train.collater([train[i] for i in range(recipe.batch_size)])
    samples.update(epoch=0, iters=0, num_iters_per_epoch=100)
    return samples


def _step(model: Any, optimizer: Any, samples: dict[str, Any]) -> None:
    out = model(samples)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()


def step_times(
    methods: list[str], data_dir: Path, recipe: Recipe, rounds: int, warmup: int = 2
) -> dict[str, float]:
    """Median seconds per optimizer step of each method, interleaved, one thread."""
    import lavis_syncmask  # noqa: F401

    torch.set_num_threads(1)
    torch.manual_seed(0)
    samples = _batch(data_dir, recipe)
    models = {}
    for method in methods:
        model = build_model(method, recipe, data_dir / "vocab").train()
        models[method] = (model, optimizer_for(model, recipe))
    times: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(warmup + rounds):
        order = methods[r % len(methods) :] + methods[: r % len(methods)]
        for method in order:
            start = time.perf_counter()
            _step(*models[method], samples)
            if r >= warmup:
                times[method].append(time.perf_counter() - start)
    return {m: statistics.median(t) for m, t in times.items()}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_peak(method: str, data_dir: str, recipe: Recipe) -> float:
    """Peak memory growth (MiB) over three training steps of a freshly built model."""
    import lavis_syncmask  # noqa: F401

    torch.set_num_threads(1)
    torch.manual_seed(0)
    samples = _batch(Path(data_dir), recipe)
    model = build_model(method, recipe, Path(data_dir) / "vocab").train()
    optimizer = optimizer_for(model, recipe)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed build-time memory back first
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
    base = _status_kib("VmRSS") * 1024
    for _ in range(3):
        _step(model, optimizer, samples)
    return (_status_kib("VmHWM") * 1024 - base) / 2**20


def peak_memory(method: str, data_dir: Path, recipe: Recipe) -> float:
    """`measure_peak` in a fresh process, so no method's caches help another."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import compare_cost as c, compare_train as t; "
        f"print(c.measure_peak({method!r}, {str(data_dir)!r}, t.Recipe(**{recipe.__dict__!r})))"
    )
    out = run_group([sys.executable, "-c", code])
    if out.returncode:
        raise RuntimeError(f"peak memory of {method} failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def cost_table(
    methods: list[str], data_dir: Path, recipe: Recipe, rounds: int, reference: str
) -> dict:
    """Step time and peak memory of every method and their ratios to `reference`."""
    times = step_times(methods, data_dir, recipe, rounds)
    # Two fresh processes at a time: each measures its own peak RSS, so they need not queue.
    with futures.ThreadPoolExecutor(max_workers=2) as pool:
        peaks = pool.map(lambda m: peak_memory(m, data_dir, recipe), methods)
        memory = dict(zip(methods, peaks, strict=True))
    return {
        m: {
            "label": METHODS[m]["label"],
            "step_s": times[m],
            "peak_mib": memory[m],
            "step_ratio": times[m] / times[reference],
            "memory_ratio": memory[m] / max(memory[reference], 1e-9),
        }
        for m in methods
    }
