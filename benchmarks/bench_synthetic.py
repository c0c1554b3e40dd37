"""Benchmark of the synthetic catalogue generator on one core (lavis_syncmask/data/synthetic).

Measures images per second of (1) the renderer alone (`render_with_patches`: image + patch
ground truth), (2) the FashionGen writer (render + h5 + visibility sidecar) and (3) the whole
`generate_catalogue` (both splits, FashionIQ tree, WordPiece vocabulary), and prints each
against the 200 images/s target.

    OMP_NUM_THREADS=1 python benchmarks/bench_synthetic.py --products 300
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, set before numpy loads its BLAS

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

TARGET = 200.0


def _commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to cpu {core}"
    return "not pinned (no sched_setaffinity)"


class _Clock:
    """Wall time and this process's CPU time: on a shared machine the CPU time is what one
    core actually spent, the wall time also counts waiting for the core."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def report(self, label: str, images: int) -> None:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        print(
            f"{label:<34} {images:>6} images | wall {wall:6.2f} s = {images / wall:6.1f} img/s "
            f"({images / wall / TARGET:.2f}x target) | cpu {cpu:6.2f} s = "
            f"{images / cpu:6.1f} img/s ({images / cpu / TARGET:.2f}x target)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=300, help="train products")
    parser.add_argument("--val-products", type=int, default=75)
    parser.add_argument("--fashioniq-triplets", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pinning = _pin_one_core()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from lavis_syncmask.data.synthetic import generate_catalogue
    from lavis_syncmask.data.synthetic.fashiongen_writer import write_fashiongen_split
    from lavis_syncmask.data.synthetic.generator import plan_catalogue
    from lavis_syncmask.data.synthetic.render import render_with_patches

    print(
        f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cpus, {pinning}; numpy {np.__version__}"
    )
    print(f"commit: {_commit()}")
    print(f"config: {vars(args)}; target {TARGET:.0f} img/s; load average {os.getloadavg()}")
    train, _ = plan_catalogue(args.products, args.val_products, args.seed)
    views = [(p.garment, v) for p in train for v in p.views]
    render_with_patches(*views[0])  # fills the shape caches, as any real run does at once
    clock = _Clock()
    for garment, view in views:
        render_with_patches(garment, view)
    clock.report("renderer (image + patches)", len(views))
    with tempfile.TemporaryDirectory() as tmp:
        clock = _Clock()
        rows = write_fashiongen_split(Path(tmp) / "t.h5", train, Path(tmp) / "t.jsonl")
        clock.report("FashionGen writer (h5 + sidecar)", rows)
        clock = _Clock()
        out = generate_catalogue(
            Path(tmp) / "full",
            args.products,
            args.val_products,
            args.seed,
            fashioniq_triplets=args.fashioniq_triplets,
            progress=False,
        )
        fashioniq = (
            len(list((out / "fashioniq" / "images").glob("*"))) if args.fashioniq_triplets else 0
        )
        train_all, val_all = plan_catalogue(args.products, args.val_products, args.seed)
        images = sum(len(p.views) for p in train_all + val_all) + fashioniq
        clock.report("generate_catalogue (everything)", images)


if __name__ == "__main__":
    main()
