"""Speed of the synthetic catalogue on one CPU core, against the 200 images/s target:

1. the renderer alone (``render_view``: image + the sidecar's attribute patches) over the rows
   of an in-memory catalogue;
2. the full generator (``generate_catalogue``: rendering, gzip h5 writing, sidecar, FashionIQ
   PNGs, WordPiece vocabulary), images per second of wall time.

    python benchmarks/bench_synthetic.py [--products 300] [--val-products 75]
        [--fashioniq-triplets 50] [--repeats 3] [--no-pin]

Prints the machine, the commit and the configuration first. The process is pinned to one CPU
(unless --no-pin) and every thread pool is limited to one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / torch start their pools

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from smoke import parse_with_smoke  # noqa: E402

TARGET_IMAGES_PER_SECOND = 200.0
SMOKE = {"products": 3, "val_products": 2, "fashioniq_triplets": 2, "repeats": 1}


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pin_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to CPU {core}"


def bench_renderer(args: argparse.Namespace) -> float:
    from lavis_syncmask.synthetic import build_catalogue, render_view

    catalogue = build_catalogue(args.products, args.val_products, args.seed)
    rows = catalogue.rows("train") + catalogue.rows("validation")
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        for product, view in rows:
            render_view(product, view)
        best = min(best, time.perf_counter() - start)
    rate = len(rows) / best
    print(
        f"renderer:  {len(rows)} views, best of {args.repeats}: {best:.2f} s -> {rate:.0f} images/s "
        f"({rate / TARGET_IMAGES_PER_SECOND:.2f}x the {TARGET_IMAGES_PER_SECOND:.0f} images/s target)"
    )
    return rate


def bench_generator(args: argparse.Namespace) -> float:
    from lavis_syncmask.synthetic import generate_catalogue, summarize_catalogue
    from lavis_syncmask.synthetic.fashioniq_writer import image_count

    best, images = float("inf"), 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out = generate_catalogue(
                tmp,
                args.products,
                args.val_products,
                args.seed,
                args.fashioniq_triplets,
                progress=False,
            )
            best = min(best, time.perf_counter() - start)
            summary = summarize_catalogue(out)
            images = sum(s["rows"] for s in summary["splits"].values())
            images += image_count(args.fashioniq_triplets) if args.fashioniq_triplets else 0
    rate = images / best
    print(
        f"generator: {images} images (h5 rows + FashionIQ), best of {args.repeats}: {best:.2f} s -> "
        f"{rate:.0f} images/s ({rate / TARGET_IMAGES_PER_SECOND:.2f}x the target)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--val-products", type=int, default=75)
    parser.add_argument("--fashioniq-triplets", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    args = parse_with_smoke(parser, SMOKE)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_one_core()

    import torch  # imported by the package anyway (via LAVIS); keep its pool at one thread

    torch.set_num_threads(1)
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {pinned}, python {platform.python_version()}"
    )
    print(f"commit: {commit()}")
    print(
        f"config: products={args.products} val_products={args.val_products} "
        f"fashioniq_triplets={args.fashioniq_triplets} seed={args.seed} repeats={args.repeats} "
        f"threads=1 image=256x256 h5 compression=gzip(1)"
    )
    bench_renderer(args)
    bench_generator(args)


if __name__ == "__main__":
    main()
